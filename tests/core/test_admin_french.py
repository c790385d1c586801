"""Every party's admin is in French: each column, filter and field it shows has a French label of our own (never
Django's name derived from the field, such as "created at"), and the admin stays French whatever language the
browser carries from the customer pages (?lang=, the language cookie)."""

import re

import pytest
from django.contrib.admin.utils import label_for_field

from tasdid.bank.admin import bank_admin
from tasdid.billing.admin import biller_admin
from tasdid.core import i18n
from tasdid.gateway.admin import gateway_admin
from tests.support.staff import signed_in, staff_account

SITES = {"biller": biller_admin, "gateway": gateway_admin, "bank": bank_admin}
OURS = ("tasdid.",)


def shown_names(model_admin) -> list[str]:
    names = [*getattr(model_admin, "list_display", ()), *(model_admin.fields or ()),
             *(model_admin.readonly_fields or ())]
    for entry in getattr(model_admin, "list_filter", ()):
        if isinstance(entry, str):
            names.append(entry)
        elif isinstance(entry, tuple):
            names.append(entry[0])
    if getattr(model_admin, "date_hierarchy", None):
        names.append(model_admin.date_hierarchy)
    return [name for name in names if isinstance(name, str) and name != "__str__"]


def admins():
    for party, site in SITES.items():
        for model, model_admin in site._registry.items():
            if not model.__module__.startswith(OURS):
                continue  # Django's own (users) come with Django's French
            yield party, model, model_admin
            for inline in model_admin.inlines:
                yield party, inline.model, inline(model, site)


def default_label(name: str) -> str:
    """What Django shows for a field without a verbose_name: its name with spaces."""
    return name.split("__")[-1].replace("_", " ")


@pytest.mark.parametrize(("party", "model", "model_admin"), list(admins()),
                         ids=lambda value: getattr(value, "__name__", None) or type(value).__name__)
def test_every_label_shown_is_ours(party, model, model_admin):
    problems = []
    meta = model._meta
    if "verbose_name" not in meta.original_attrs:
        problems.append(f"{model.__name__}.Meta.verbose_name")
    for name in shown_names(model_admin):
        final = name.split("__")
        target = model
        for part in final[:-1]:
            target = target._meta.get_field(part).related_model
        try:
            field = target._meta.get_field(final[-1])
        except Exception:
            field = None
        if field is not None and getattr(field, "concrete", False):
            if "verbose_name" not in field.deconstruct()[3]:
                problems.append(f"{model.__name__}.{name}: no verbose_name")
            continue
        label = str(label_for_field(name, model, model_admin))
        if label == default_label(name) or label == name:
            problems.append(f"{model.__name__}.{name}: no description")
    assert problems == []


def test_every_model_field_of_the_parties_has_a_label():
    """Not only what the admin shows today: a column added tomorrow is labelled already."""
    from django.apps import apps

    missing = [f"{model.__name__}.{field.name}"
               for app in ("core", "billing", "messaging", "gateway", "bank")
               for model in apps.get_app_config(app).get_models()
               for field in model._meta.get_fields()
               if getattr(field, "concrete", False) and not field.auto_created
               and "verbose_name" not in field.deconstruct()[3]]
    assert missing == []


ENGLISH = re.compile(r">\s*(created at|updated at|paid at|amount|state|status|line|customer|attempts|kind)\s*<",
                     re.I)


@pytest.mark.django_db
@pytest.mark.parametrize(("party", "path"), [
    ("biller", "/admin/billing/paymentorder/"), ("biller", "/admin/messaging/sms/"),
    ("biller", "/admin/billing/identificationattempt/"), ("gateway", "/admin/gateway/paymentsession/"),
    ("bank", "/admin/bank/hold/"),
])
def test_admin_pages_are_french_whatever_the_customer_language(party, path):
    staff_account("staff", parties=[party])
    client = signed_in(party)
    client.cookies[i18n.COOKIE] = "ar"  # chosen on the customer pages of the same host
    response = client.get(path)
    assert response.status_code == 200
    assert response["Content-Language"] == "fr"
    page = response.content.decode()
    assert '<html lang="fr"' in page
    assert ENGLISH.findall(page) == []


@pytest.mark.django_db
def test_admin_login_is_french_too():
    from tests.support.staff import party_client

    client = party_client("biller")
    client.cookies[i18n.COOKIE] = "en"
    response = client.get("/admin/login/?lang=ar")
    assert response["Content-Language"] == "fr"
    assert "Nom d’utilisateur" in response.content.decode()
