// Swagger UI for /docs, started from a file of the service's own: the page's
// Content-Security-Policy lets no inline script run. The page names the OpenAPI document.
const docs = document.getElementById("swagger-ui");
window.ui = SwaggerUIBundle({
  url: docs.dataset.openapi,
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
});
