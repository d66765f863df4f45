"""The one Jinja environment, shared by the web pages and the emails (autoescaped, i18n installed)."""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from events_app.lib import i18n
from events_app.settings import PROJECT_ROOT

TEMPLATES_DIR = PROJECT_ROOT / "templates"


def make_environment() -> Environment:
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(enabled_extensions=("html", "xml"), default_for_string=True),
        extensions=["jinja2.ext.i18n"],
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    environment.install_gettext_callables(  # type: ignore[attr-defined]
        i18n.gettext, i18n.ngettext, newstyle=True, pgettext=i18n.pgettext
    )
    environment.globals.update(
        current_language=i18n.current_language,
        language_names=i18n.LANGUAGE_NAMES,
        supported_languages=i18n.SUPPORTED_LANGUAGES,
        html_lang=lambda: i18n.current_language().replace("_", "-"),
    )
    return environment


def render_block(environment: Environment, template_name: str, block: str, context: dict[str, Any]) -> str:
    """Render one ``{% block %}`` of a template (emails keep subject and bodies as blocks of one file)."""
    template = environment.get_template(template_name)
    render = template.blocks[block]
    return "".join(render(template.new_context(context))).strip()
