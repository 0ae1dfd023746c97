"""The certificate types this service issues: 营业执照, 食品经营许可证, 建筑工程施工许可证.

Each is a :class:`~econtract.issuance._templates.LicenceTemplate` (the model and its checks
live there): the JSON Schema of its fields, with an example a client can copy, and the rows
of its printed form. A new type is a new entry here and in :data:`TEMPLATES`, which
:func:`ensure_certificate_types` registers in the database at start-up.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from econtract.errors import NotFoundError
from econtract.issuance._templates import (
    CREDIT_CODE_PATTERN,
    ID_NUMBER_PATTERN,
    LONG_TERM,
    SCHEMA_DIALECT,
    FormRow,
    LicenceTemplate,
)
from econtract.models import CertificateType


def _text(title: str, description: str, max_length: int, **extra: Any) -> dict[str, Any]:
    return {
        "type": "string",
        "title": title,
        "description": description,
        "minLength": 1,
        "maxLength": max_length,
        **extra,
    }


def _date(title: str, description: str) -> dict[str, Any]:
    return {
        "type": "string",
        "title": title,
        "description": description + " (YYYY-MM-DD).",
        "format": "date",
        "maxLength": 10,
    }


def _credit_code(title: str) -> dict[str, Any]:
    return _text(
        title,
        "Unified social credit code, 18 characters with a GB 32100 check character.",
        18,
        minLength=18,
        pattern=CREDIT_CODE_PATTERN,
    )


def _object(
    title: str, description: str, properties: dict[str, Any], required: list[str], **extra: Any
) -> dict[str, Any]:
    return {
        "$schema": SCHEMA_DIALECT,
        "title": title,
        "description": description,
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
        **extra,
    }


BUSINESS_LICENCE = LicenceTemplate(
    code="business_licence",
    name="营业执照",
    name_en="Business Licence",
    version=1,
    number_prefix="YYZZ",
    # The national type codes below are configuration: the defining authority's credit code
    # and the 3 digits it gives the type, as the national licence catalogue publishes them.
    # 营业执照: 国家市场监督管理总局 (11100000000013338W), type 032, as in public identifiers.
    national_type_code="11100000000013338W032",
    holder_name_field="name",
    holder_code_field="credit_code",
    validity_years=None,
    valid_until_field="business_term",
    past_date_fields=("established",),
    issuer_label="登记机关",
    header_fields=("credit_code",),
    schema=_object(
        "营业执照",
        "Business licence of an enterprise (营业执照), as registered by a market regulator.",
        {
            "credit_code": _credit_code("统一社会信用代码"),
            "name": _text("名称", "The enterprise's registered name.", 100),
            "kind": _text("类型", "Type of enterprise, e.g. 有限责任公司（自然人独资）.", 50),
            "legal_representative": _text(
                "法定代表人", "Legal representative (or investor, managing partner).", 50
            ),
            "registered_capital": _text("注册资本", "Registered capital, e.g. 500万元人民币.", 50),
            "established": _date("成立日期", "Date of establishment"),
            "business_term": {
                "title": "营业期限",
                "description": "Last day of the business term (YYYY-MM-DD), or 长期 for an "
                "unlimited term; 长期 when absent.",
                "type": "string",
                "maxLength": 10,
                "anyOf": [{"format": "date"}, {"const": LONG_TERM}],
                "default": LONG_TERM,
            },
            "address": _text("住所", "Registered address.", 200),
            "business_scope": _text("经营范围", "Business scope, as registered.", 500),
        },
        [
            "credit_code",
            "name",
            "kind",
            "legal_representative",
            "registered_capital",
            "established",
            "address",
            "business_scope",
        ],
        examples=[
            {
                "credit_code": "9133010052CL12THX9",
                "name": "杭州远航建设工程有限公司",
                "kind": "有限责任公司（自然人独资）",
                "legal_representative": "张丽",
                "registered_capital": "500万元人民币",
                "established": "2011-03-24",
                "business_term": LONG_TERM,
                "address": "浙江省杭州市西湖区中山路42号",
                "business_scope": "房屋建筑工程施工；市政公用工程施工（依法须经批准的项目，"
                "经相关部门批准后方可开展经营活动）",
            }
        ],
    ),
    rows=(
        FormRow(label="名称", fields=("name",)),
        FormRow(label="类型", fields=("kind",)),
        FormRow(label="法定代表人", fields=("legal_representative",)),
        FormRow(label="注册资本", fields=("registered_capital",)),
        FormRow(label="成立日期", fields=("established",)),
        FormRow(label="营业期限", fields=("established", "business_term"), text="{0}至{1}"),
        FormRow(label="住所", fields=("address",)),
        FormRow(label="经营范围", fields=("business_scope",)),
    ),
    notes=(
        "国家企业信用信息公示系统网址：https://www.gsxt.gov.cn",
        "市场主体应当于每年1月1日至6月30日通过国家企业信用信息公示系统报送公示年度报告。",
    ),
)

FOOD_BUSINESS_PERMIT = LicenceTemplate(
    code="food_business_permit",
    name="食品经营许可证",
    name_en="Food Business Permit",
    version=1,
    number_prefix="JY",
    # 食品经营许可证 is defined by 国家市场监督管理总局 too; its 3 digits are configuration.
    national_type_code="11100000000013338W046",
    holder_name_field="operator_name",
    holder_code_field="credit_code",
    validity_years=5,
    masked_fields=("id_number",),
    schema=_object(
        "食品经营许可证",
        "Food business permit (食品经营许可证): the operator, premises and what it may sell. "
        "Give credit_code for an organisation, id_number for an individual operator.",
        {
            "operator_name": _text("经营者名称", "The operator's name.", 100),
            "credit_code": _credit_code("统一社会信用代码"),
            "id_number": _text(
                "身份证号码",
                "Resident identity number of an individual operator (GB 11643); masked on "
                "the verification page.",
                18,
                minLength=18,
                pattern=ID_NUMBER_PATTERN,
            ),
            "legal_representative": _text(
                "法定代表人（负责人）", "Legal representative or person in charge.", 50
            ),
            "address": _text("住所", "Registered address.", 200),
            "premises": _text("经营场所", "Where the food business is carried on.", 200),
            "business_type": _text(
                "主体业态",
                "食品销售经营者, 餐饮服务经营者 or 集中用餐单位食堂, optionally followed by a "
                "sub-type in full-width brackets, e.g. 餐饮服务经营者（中型餐馆）.",
                40,
                pattern="^(食品销售经营者|餐饮服务经营者|集中用餐单位食堂)(（[^（）]{1,20}）)?$",
            ),
            "business_items": _text("经营项目", "What the operator may sell or serve.", 500),
            "supervising_authority": _text(
                "日常监督管理机构", "The office in charge of routine supervision.", 100
            ),
            "supervisors": _text("日常监督管理人员", "Inspectors in charge, if named.", 50),
            "complaint_hotline": _text(
                "投诉举报电话", "Complaints telephone number.", 20, pattern=r"^[0-9][0-9-]{2,19}$"
            ),
        },
        [
            "operator_name",
            "legal_representative",
            "address",
            "premises",
            "business_type",
            "business_items",
            "supervising_authority",
            "complaint_hotline",
        ],
        oneOf=[{"required": ["credit_code"]}, {"required": ["id_number"]}],
        examples=[
            {
                "operator_name": "嘉兴润泽餐饮管理有限公司",
                "credit_code": "9133040016D272HD32",
                "legal_representative": "陈明",
                "address": "浙江省嘉兴市南湖区湖滨路540号",
                "premises": "浙江省嘉兴市南湖区湖滨路540号一层101室",
                "business_type": "餐饮服务经营者（中型餐馆）",
                "business_items": "预包装食品销售（含冷藏冷冻食品）；热食类食品制售；"
                "冷食类食品制售；自制饮品制售",
                "supervising_authority": "嘉兴市南湖区市场监督管理局湖滨市场监督管理所",
                "supervisors": "李强、王芳",
                "complaint_hotline": "12315",
            }
        ],
    ),
    rows=(
        FormRow(label="经营者名称", fields=("operator_name",)),
        FormRow(label="统一社会信用代码", fields=("credit_code",)),
        FormRow(label="身份证号码", fields=("id_number",)),
        FormRow(label="法定代表人（负责人）", fields=("legal_representative",)),
        FormRow(label="住所", fields=("address",)),
        FormRow(label="经营场所", fields=("premises",)),
        FormRow(label="主体业态", fields=("business_type",)),
        FormRow(label="经营项目", fields=("business_items",)),
        FormRow(label="日常监督管理机构", fields=("supervising_authority",)),
        FormRow(label="日常监督管理人员", fields=("supervisors",)),
        FormRow(label="投诉举报电话", fields=("complaint_hotline",)),
    ),
    notes=(
        "本许可证有效期届满需要继续经营的，应当在有效期届满前九十个工作日至十五个工作日期间提出延续申请。",
    ),
)

CONSTRUCTION_PERMIT = LicenceTemplate(
    code="construction_permit",
    name="建筑工程施工许可证",
    name_en="Construction Permit",
    version=1,
    number_prefix="SGXK",
    # 建筑工程施工许可证 is defined by 住房和城乡建设部 (11100000000019713D); its 3 digits are
    # configuration.
    national_type_code="11100000000019713D001",
    holder_name_field="builder",
    holder_code_field=None,
    validity_years=None,
    preamble="根据《中华人民共和国建筑法》第八条规定，经审查，本建筑工程符合施工条件，准予施工。特发此证。",
    schema=_object(
        "建筑工程施工许可证",
        "Construction permit (建筑工程施工许可证) for one building project.",
        {
            "builder": _text("建设单位", "The client organisation building the project.", 100),
            "project_name": _text("工程名称", "The project's name.", 100),
            "site_address": _text("建设地址", "Where the project is built.", 200),
            "scale": _text("建设规模", "Size of the project, e.g. 总建筑面积35000平方米.", 200),
            "contract_price": _text(
                "合同价格",
                "Contract price in units of 10,000 yuan (万元), a decimal with up to two places.",
                12,
                pattern=r"^(0|[1-9]\d{0,8})(\.\d{1,2})?$",
            ),
            "survey_unit": _text("勘察单位", "The surveying contractor.", 100),
            "design_unit": _text("设计单位", "The design institute.", 100),
            "construction_unit": _text("施工单位", "The main construction contractor.", 100),
            "supervision_unit": _text("监理单位", "The supervising engineer's firm.", 100),
            "survey_manager": _text("勘察单位项目负责人", "Survey project manager.", 30),
            "design_manager": _text("设计单位项目负责人", "Design project manager.", 30),
            "construction_manager": _text("施工单位项目负责人", "Site project manager.", 30),
            "chief_supervisor": _text("总监理工程师", "Chief supervising engineer.", 30),
            "contract_days": {
                "type": "integer",
                "title": "合同工期",
                "description": "Contract duration in calendar days.",
                "minimum": 1,
                "maximum": 3650,
            },
            "remarks": _text("备注", "Remarks printed on the permit.", 200),
        },
        [
            "builder",
            "project_name",
            "site_address",
            "scale",
            "contract_price",
            "survey_unit",
            "design_unit",
            "construction_unit",
            "supervision_unit",
            "survey_manager",
            "design_manager",
            "construction_manager",
            "chief_supervisor",
            "contract_days",
        ],
        examples=[
            {
                "builder": "杭州远航建设工程有限公司",
                "project_name": "西湖区文三路科创园一期工程",
                "site_address": "浙江省杭州市西湖区文三路以北、学院路以东",
                "scale": "总建筑面积35200平方米，地上12层，地下2层",
                "contract_price": "12850.50",
                "survey_unit": "浙江省工程勘察设计院集团有限公司",
                "design_unit": "杭州市建筑设计研究院有限公司",
                "construction_unit": "浙江宏达建设集团有限公司",
                "supervision_unit": "杭州信达工程监理有限公司",
                "survey_manager": "赵刚",
                "design_manager": "孙丽华",
                "construction_manager": "周建国",
                "chief_supervisor": "吴明",
                "contract_days": 730,
                "remarks": "桩基工程另行发包",
            }
        ],
    ),
    rows=(
        FormRow(label="建设单位", fields=("builder",)),
        FormRow(label="工程名称", fields=("project_name",)),
        FormRow(label="建设地址", fields=("site_address",)),
        FormRow(label="建设规模", fields=("scale",)),
        FormRow(label="合同价格", fields=("contract_price",), text="{0}万元"),
        FormRow(label="勘察单位", fields=("survey_unit",)),
        FormRow(label="设计单位", fields=("design_unit",)),
        FormRow(label="施工单位", fields=("construction_unit",)),
        FormRow(label="监理单位", fields=("supervision_unit",)),
        FormRow(label="勘察单位项目负责人", fields=("survey_manager",)),
        FormRow(label="设计单位项目负责人", fields=("design_manager",)),
        FormRow(label="施工单位项目负责人", fields=("construction_manager",)),
        FormRow(label="总监理工程师", fields=("chief_supervisor",)),
        FormRow(label="合同工期", fields=("contract_days",), text="{0}天"),
        FormRow(label="备注", fields=("remarks",)),
    ),
    notes=(
        "一、本证放置施工现场，作为准予施工的凭证。二、未经发证机关许可，本证的各项内容不得变更。"
        "三、建设单位应当自领取本证之日起三个月内开工；因故不能按期开工的，应当向发证机关申请延期。"
        "四、既不开工又不申请延期或者超过延期时限的，本证自行废止。",
    ),
)

TEMPLATES: Mapping[str, LicenceTemplate] = MappingProxyType(
    {t.code: t for t in (BUSINESS_LICENCE, FOOD_BUSINESS_PERMIT, CONSTRUCTION_PERMIT)}
)
"""Every certificate type, by code."""


def get_template(code: str) -> LicenceTemplate:
    """The template called ``code``; :class:`~econtract.errors.NotFoundError` otherwise."""
    try:
        return TEMPLATES[code]
    except KeyError:
        known = ", ".join(sorted(TEMPLATES))
        raise NotFoundError(
            f"There is no certificate type {code!r}; the known types are {known}."
        ) from None


def ensure_certificate_types(session: Session) -> None:
    """Register every template as a certificate type (new types and new versions)."""
    stored = {t.code: t for t in session.scalars(select(CertificateType))}
    for template in TEMPLATES.values():
        row = stored.get(template.code)
        if row is None:
            session.add(
                CertificateType(
                    code=template.code,
                    name=template.name,
                    schema=template.schema,
                    version=template.version,
                )
            )
        elif row.version != template.version:
            row.name, row.schema, row.version = template.name, template.schema, template.version
