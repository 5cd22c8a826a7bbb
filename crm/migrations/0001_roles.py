"""The role groups and the model permissions each one holds.

Object-level rules (a salesperson sees only the customers they own) live in crm.roles and the
selectors; these permissions say which kinds of records a role may touch at all.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

from crm.roles import roles_sync


def create_roles(apps, schema_editor):
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    roles_sync(group_model=apps.get_model("auth", "Group"), permission_model=apps.get_model("auth", "Permission"))


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("customers", "0001_initial"),
        ("privacy", "0002_builtin_purposes"),
    ]
    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
