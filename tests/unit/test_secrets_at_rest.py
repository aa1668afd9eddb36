"""Provider secrets encrypted at rest (issue 11, item 1): the column, dumps, lookups, the data migration, key
rotation and the system checks. No test may find a plaintext secret outside the model's Python value."""

from __future__ import annotations

import io
import json

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import FieldError
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import override_settings

from coffee_payment.devices import encryption
from coffee_payment.devices.checks import check_encryption_key_present, check_encryption_keys_valid
from coffee_payment.devices.models import Merchant, ProviderAccount

pytestmark = pytest.mark.timeout(60)

SECRET = "live_Sup3rSecretKey-for-refunds"
OLD_KEY, NEW_KEY = Fernet.generate_key().decode(), Fernet.generate_key().decode()


def _raw_secret(pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM devices_provideraccount WHERE id = %s", [pk])
        return cursor.fetchone()[0]


def _account(secret: str = SECRET, name: str = "Merchant A") -> ProviderAccount:
    merchant = Merchant.objects.create(name=name)
    return ProviderAccount.objects.create(merchant=merchant, provider="yookassa", account_id="shop-1", secret=secret)


@pytest.mark.django_db
def test_the_column_holds_a_token_and_the_model_the_secret():
    account = _account()
    raw = _raw_secret(account.pk)
    assert SECRET not in raw and raw.startswith("gAAAA")  # a Fernet token (version byte 0x80)
    loaded = ProviderAccount.objects.get(pk=account.pk)
    assert loaded.secret == SECRET and f"{loaded.secret}" == SECRET
    assert SECRET not in repr(loaded.secret) and SECRET not in repr(loaded.__dict__)


@pytest.mark.django_db
def test_equal_secrets_give_different_tokens():
    first, second = _account(name="A"), _account(name="B")
    assert _raw_secret(first.pk) != _raw_secret(second.pk)


@pytest.mark.django_db
def test_dumpdata_holds_no_secret_and_loaddata_restores_it(tmp_path):
    account = _account()
    out = io.StringIO()
    call_command("dumpdata", "devices", stdout=out)
    assert SECRET not in out.getvalue()
    dump = tmp_path / "devices.json"
    dump.write_text(out.getvalue())
    ProviderAccount.objects.all().delete()
    Merchant.objects.all().delete()
    call_command("loaddata", str(dump), verbosity=0)
    assert ProviderAccount.objects.get(pk=account.pk).secret == SECRET
    assert [row["fields"]["secret"] for row in json.loads(dump.read_text()) if "secret" in row["fields"]]


@pytest.mark.django_db
@pytest.mark.parametrize("lookup", ["secret", "secret__startswith", "secret__contains", "secret__gt", "secret__in"])
def test_the_database_is_never_asked_to_compare_secrets(lookup):
    _account()
    value = ["x"] if lookup.endswith("__in") else SECRET[:4]
    with pytest.raises(FieldError):
        list(ProviderAccount.objects.filter(**{lookup: value}))
    assert ProviderAccount.objects.filter(secret__isnull=False).count() == 1


@pytest.mark.django_db
def test_rotation_moves_every_row_to_the_new_key():
    with override_settings(FIELD_ENCRYPTION_KEYS=[OLD_KEY]):
        account = _account()
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW_KEY, OLD_KEY]):
        assert ProviderAccount.objects.get(pk=account.pk).secret == SECRET  # old tokens still read
        out = io.StringIO()
        call_command("rotate_secrets", stdout=out)
        assert "Re-encrypted 1 provider secret(s)" in out.getvalue()
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW_KEY]):
        assert ProviderAccount.objects.get(pk=account.pk).secret == SECRET


@pytest.mark.django_db
def test_a_removed_key_fails_clearly_without_quoting_the_token_or_the_secret():
    with override_settings(FIELD_ENCRYPTION_KEYS=[OLD_KEY]):
        account = _account()
    token = _raw_secret(account.pk)
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW_KEY]):
        with pytest.raises(encryption.SecretUndecryptable) as caught:
            ProviderAccount.objects.get(pk=account.pk)
    message = str(caught.value)
    assert "FIELD_ENCRYPTION_KEYS" in message and SECRET not in message and token not in message


@override_settings(FIELD_ENCRYPTION_KEYS=[], DEBUG=False)
def test_no_key_with_debug_off_refuses_to_encrypt_and_fails_the_deploy_check():
    with pytest.raises(encryption.EncryptionKeyMissing, match="FIELD_ENCRYPTION_KEYS"):
        encryption.encrypt(SECRET)
    assert [error.id for error in check_encryption_key_present()] == ["coffee_payment.E007"]


@override_settings(FIELD_ENCRYPTION_KEYS=[], DEBUG=True)
def test_debug_without_a_key_uses_the_development_key():
    assert encryption.decrypt(encryption.encrypt(SECRET)) == SECRET
    assert check_encryption_key_present() == []


@override_settings(FIELD_ENCRYPTION_KEYS=[NEW_KEY, "not-a-fernet-key"])
def test_a_malformed_key_is_reported_by_position_not_value():
    (error,) = check_encryption_keys_valid()
    assert error.id == "coffee_payment.E008" and "key #2" in error.msg and "not-a-fernet-key" not in error.msg
    assert check_encryption_key_present() == []


@pytest.mark.django_db(transaction=True)
def test_the_data_migration_encrypts_existing_plaintext_rows():
    executor = MigrationExecutor(connection)
    executor.migrate([("devices", "0001_initial")])
    try:
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO devices_merchant (name, created_at) VALUES ('Old', CURRENT_TIMESTAMP)")
            cursor.execute("SELECT id FROM devices_merchant WHERE name = 'Old'")
            merchant_id = cursor.fetchone()[0]
            cursor.execute(
                "INSERT INTO devices_provideraccount (merchant_id, provider, account_id, secret) "
                "VALUES (%s, 'tbank', 'terminal', %s)",
                [merchant_id, SECRET],
            )
            cursor.execute("SELECT id FROM devices_provideraccount WHERE account_id = 'terminal'")
            pk = cursor.fetchone()[0]
        executor = MigrationExecutor(connection)
        executor.migrate([("devices", "0002_encrypt_provider_secrets")])
        assert SECRET not in _raw_secret(pk)
        assert ProviderAccount.objects.get(pk=pk).secret == SECRET
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
        ProviderAccount.objects.all().delete()
        Merchant.objects.all().delete()
