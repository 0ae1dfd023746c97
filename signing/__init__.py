"""Sealing PDFs: PAdES levels B-B to B-LTA, certification and approval seals, the seal's look."""
