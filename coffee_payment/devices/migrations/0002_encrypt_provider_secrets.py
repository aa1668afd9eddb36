"""Provider secrets encrypted at rest: widen the column to text, encrypt every plaintext row, switch the field.

The data step reads and writes raw column values through a plain TextField, so it never depends on the field's own
conversions; a row that already holds a token (a re-run, or rows restored from an encrypted dump) is left as it is.
Reversing decrypts the rows back to plaintext (for a rollback of the code only; it needs the keys).
"""

from django.db import migrations, models

import coffee_payment.devices.fields
from coffee_payment.devices import encryption


def _rewrite(apps, schema_editor, convert) -> None:
    account_model = apps.get_model("devices", "ProviderAccount")
    manager = account_model._base_manager.using(schema_editor.connection.alias)
    for pk, value in manager.values_list("pk", "secret"):
        new = convert(value)
        if new != value:
            manager.filter(pk=pk).update(secret=new)


def encrypt_rows(apps, schema_editor) -> None:
    _rewrite(apps, schema_editor, lambda value: value if encryption.is_token(value) else encryption.encrypt(value))


def decrypt_rows(apps, schema_editor) -> None:
    _rewrite(apps, schema_editor, lambda value: str(encryption.decrypt(value)) if encryption.is_token(value) else value)


class Migration(migrations.Migration):

    dependencies = [
        ("devices", "0001_initial"),
    ]

    operations = [
        migrations.AlterField(
            model_name="provideraccount",
            name="secret",
            field=models.TextField(help_text="YooKassa secret key or TBank terminal Password"),
        ),
        migrations.RunPython(encrypt_rows, decrypt_rows),
        migrations.AlterField(
            model_name="provideraccount",
            name="secret",
            field=coffee_payment.devices.fields.EncryptedTextField(
                help_text="YooKassa secret key or TBank terminal Password (encrypted at rest)"
            ),
        ),
    ]
