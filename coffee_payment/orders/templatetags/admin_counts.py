"""``{% result_count cl %}``: "N orders" under an admin list in the language's plural forms.

Django's ``admin/pagination.html`` writes ``verbose_name`` for 1 and ``verbose_name_plural`` for anything else, which
in Russian gives "0 заказы" and "5 заказы". A ModelAdmin with ``result_count_label`` (an ``ngettext_lazy(singular,
plural, "count")``) gets ``label % {"count": n}`` instead: 1 заказ, 2 заказа, 5 заказов, 21 заказ. Used by
``admin/counted_pagination.html``, which each app's ``admin/<app>/pagination.html`` includes.
"""

from __future__ import annotations

from typing import Any

from django import template

register = template.Library()


@register.simple_tag
def result_count(cl: Any) -> str:
    """``cl.result_count`` with its noun: the admin's ``result_count_label`` when it has one, else Django's
    singular/plural choice."""
    label = getattr(cl.model_admin, "result_count_label", None)
    if label is not None:
        return str(label % {"count": cl.result_count})
    noun = cl.opts.verbose_name if cl.result_count == 1 else cl.opts.verbose_name_plural
    return f"{cl.result_count} {noun}"
