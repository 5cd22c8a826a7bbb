"""The role groups and the model permissions each one holds.

Object-level rules (a salesperson sees only the customers they own) live in crm.roles and the
selectors; these permissions say which kinds of records a role may touch at all.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

ROLE_PERMISSIONS = {
    "sales": {
        "customers": {
            "account": ["view", "add", "change"],
            "customer": ["view", "add", "change"],
            "purchase": ["view", "add"],
            "product": ["view"],
            "event": ["view"],
            "note": ["view", "add", "change"],
            "importjob": ["view", "add"],
            "tag": ["view", "add"],
        },
        "privacy": {"consentrecord": ["view"], "consentstate": ["view"]},
    },
    "marketing": {
        "customers": {
            "account": ["view"],
            "customer": ["view"],
            "purchase": ["view"],
            "product": ["view", "add", "change"],
            "event": ["view", "add"],
            "note": ["view"],
            "tag": ["view"],
        },
        "privacy": {"consentstate": ["view"]},
    },
    "privacy": {
        "customers": {
            "account": ["view"],
            "customer": ["view", "change"],
            "purchase": ["view"],
            "event": ["view"],
            "note": ["view"],
        },
        "privacy": {
            "purpose": ["view", "add", "change"],
            "consentwording": ["view", "add", "change"],
            "consentrecord": ["view", "add"],
            "consentstate": ["view"],
        },
    },
}


def create_roles(apps, schema_editor):
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, by_app in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        for app_label, by_model in by_app.items():
            for model, actions in by_model.items():
                codenames = [f"{action}_{model}" for action in actions]
                perms = Permission.objects.filter(
                    content_type__app_label=app_label, codename__in=codenames
                )
                group.permissions.add(*perms)


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("customers", "0001_initial"),
        ("privacy", "0002_builtin_purposes"),
    ]
    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
