"""Custom Token Exchange (``extra`` rules of Auth0's SDK) and Token Vault, against the stand-in."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from django_auth0_obo.exchange import (
    TOKEN_TYPE_FEDERATED,
    get_access_token_for_connection,
    get_token_by_exchange_profile,
)
from django_auth0_obo.exchange_params import MAX_VALUES_PER_KEY, RESERVED_PARAMS, clean_extra
from django_auth0_obo.models import ExchangedToken
from tests.exchange_support import DOWNSTREAM, configure, user_token

pytestmark = pytest.mark.django_db

EXTERNAL = "urn:example:legacy-session"


@pytest.fixture
def tenant(auth0_tenant, settings):
    configure(auth0_tenant, settings)
    auth0_tenant.add_exchange_profile(
        EXTERNAL, lambda form: {"sub": f"legacy|{form['subject_token'][-6:]}"}
    )
    return auth0_tenant


def test_a_custom_exchange_sends_the_profiles_subject_token_type(tenant):
    result = get_token_by_exchange_profile(
        "legacy-session-123456", EXTERNAL, audience=DOWNSTREAM, scope="calendar:read"
    )

    (request,) = tenant.token_requests
    assert request.form["subject_token_type"] == EXTERNAL
    assert request.form["subject_token"] == "legacy-session-123456"
    assert "requested_token_type" not in request.form
    assert result["scope"] == "calendar:read"
    assert ExchangedToken.objects.get().subject == "legacy|123456"


def test_a_custom_exchange_is_cached_per_subject_token_type_and_extra(tenant):
    get_token_by_exchange_profile("legacy-session-1", EXTERNAL, audience=DOWNSTREAM)
    get_token_by_exchange_profile("legacy-session-1", EXTERNAL, audience=DOWNSTREAM)
    assert tenant.count("token") == 1

    get_token_by_exchange_profile(
        "legacy-session-1", EXTERNAL, audience=DOWNSTREAM, extra={"device": "a"}
    )
    get_token_by_exchange_profile(
        "legacy-session-1", EXTERNAL, audience=DOWNSTREAM, extra={"device": "b"}
    )
    assert tenant.count("token") == 3


def test_organization_and_other_extra_parameters_are_sent_as_strings(tenant):
    get_token_by_exchange_profile(
        "legacy-session-1",
        EXTERNAL,
        audience=DOWNSTREAM,
        extra={"organization": "org_123", "device_count": 3, "trusted": True, "one": ["x"]},
    )

    form = tenant.token_requests[0].form
    assert form["organization"] == "org_123"
    assert form["device_count"] == "3"
    assert form["trusted"] == "true"
    assert form["one"] == "x"


@pytest.mark.parametrize(
    "name", ["audience", "Audience", "SCOPE", "client_secret", "Subject_Token", "login_hint"]
)
def test_a_reserved_extra_parameter_is_refused_before_any_call(tenant, name):
    with pytest.raises(ValueError, match="reserved"):
        get_token_by_exchange_profile("legacy", EXTERNAL, extra={name: "x"})
    assert tenant.count("token") == 0


@pytest.mark.parametrize("value", [{"a": "b"}, {"a"}, b"bytes", None, ["ok", {"no": 1}], object()])
def test_an_extra_value_of_another_type_is_refused(value):
    with pytest.raises(ValueError, match="unsupported type"):
        clean_extra({"param": value})


def test_at_most_twenty_values_per_extra_parameter():
    assert clean_extra({"p": ["v"] * MAX_VALUES_PER_KEY}) == {"p": ["v"] * 20}
    with pytest.raises(ValueError, match="more than 20"):
        clean_extra({"p": ["v"] * (MAX_VALUES_PER_KEY + 1)})


@given(
    st.dictionaries(
        st.text(min_size=1, max_size=20),
        st.one_of(st.text(), st.integers(), st.lists(st.text(), max_size=25)),
        max_size=5,
    )
)
def test_extra_is_either_refused_or_sent_as_strings_without_reserved_names(extra):
    try:
        cleaned = clean_extra(extra)
    except ValueError:
        assert any(
            str(k).lower() in RESERVED_PARAMS
            or (isinstance(v, list) and len(v) > MAX_VALUES_PER_KEY)
            for k, v in extra.items()
        )
        return
    assert not {k.lower() for k in cleaned} & RESERVED_PARAMS
    for value in cleaned.values():
        assert isinstance(value, str) or all(isinstance(v, str) for v in value)


def test_a_missing_subject_token_type_is_refused_before_any_call(tenant):
    with pytest.raises(ValueError, match="subject_token_type"):
        get_token_by_exchange_profile("legacy", "")
    assert tenant.count("token") == 0


def test_a_profile_refusal_is_the_tenants_error(tenant):
    from django_auth0_obo.exceptions import TokenExchangeError

    tenant.add_exchange_profile(
        "urn:example:strict",
        lambda form: {
            "error": "access_denied",
            "error_description": "Unknown user.",
            "status": 403,
        },
    )

    with pytest.raises(TokenExchangeError) as failure:
        get_token_by_exchange_profile("who", "urn:example:strict", audience=DOWNSTREAM)

    assert failure.value.error == "access_denied"
    assert failure.value.error_description == "Unknown user."
    assert failure.value.status_code == 403


def test_id_and_refresh_tokens_are_returned_once_and_never_stored(tenant):
    body = {
        "access_token": "opaque-access-token-1",
        "expires_in": 600,
        "token_type": "Bearer",
        "id_token": "id-token-secret-value",
        "refresh_token": "refresh-token-secret-value",
    }
    tenant.inject_fault("token", status=200, body=body)

    first = get_token_by_exchange_profile("legacy-session-1", EXTERNAL, audience=DOWNSTREAM)
    second = get_token_by_exchange_profile("legacy-session-1", EXTERNAL, audience=DOWNSTREAM)

    assert first["id_token"] == "id-token-secret-value"
    assert first["refresh_token"] == "refresh-token-secret-value"
    assert second["access_token"] == "opaque-access-token-1"
    assert "id_token" not in second
    assert "refresh_token" not in second
    assert tenant.count("token") == 1
    row = str(list(ExchangedToken.objects.values()))
    assert "id-token-secret-value" not in row
    assert "refresh-token-secret-value" not in row
    assert "opaque-access-token-1" not in row


# -- Token Vault -------------------------------------------------------------------------------


def test_token_vault_sends_auth0s_federated_connection_grant(tenant):
    subject = user_token(tenant)

    result = get_access_token_for_connection("google-oauth2", subject, login_hint="me@gmail.com")

    (request,) = tenant.token_requests
    assert request.form == {
        "grant_type": (
            "urn:auth0:params:oauth:grant-type:token-exchange:federated-connection-access-token"
        ),
        "subject_token": subject,
        "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
        "requested_token_type": TOKEN_TYPE_FEDERATED,
        "connection": "google-oauth2",
        "login_hint": "me@gmail.com",
        "client_id": tenant.client_id,
        "client_secret": "[redacted]",
    }
    federated = tenant.federated_tokens[result["access_token"]]
    assert (federated.connection, federated.sub) == ("google-oauth2", "auth0|user123")
    assert result["issued_token_type"] == TOKEN_TYPE_FEDERATED
    assert result["scope"] == "openid https://www.googleapis.com/auth/calendar.events"


def test_token_vault_results_are_cached_per_connection_and_login_hint(tenant):
    tenant.add_connection("slack", ["chat:write"])
    subject = user_token(tenant)

    first = get_access_token_for_connection("google-oauth2", subject)
    again = get_access_token_for_connection("google-oauth2", subject)
    assert again["access_token"] == first["access_token"]
    get_access_token_for_connection("google-oauth2", subject, login_hint="other@gmail.com")
    get_access_token_for_connection("slack", subject)

    assert tenant.count("token") == 3
    row = ExchangedToken.objects.get(grant="token_vault", audience="slack")
    assert row.subject == "auth0|user123"


def test_token_vault_refusal_for_an_unlinked_user(tenant):
    from django_auth0_obo.exceptions import TokenExchangeError

    tenant.add_connection("github", users=["auth0|someone-else"])

    with pytest.raises(TokenExchangeError) as failure:
        get_access_token_for_connection("github", user_token(tenant))

    assert failure.value.error == "federated_connection_refresh_token_not_found"
    assert failure.value.status_code == 401


def test_token_vault_refuses_a_raw_dpop_bound_token(tenant, dpop_key):
    with pytest.raises(ValueError, match="DPoP-bound"):
        get_access_token_for_connection("google-oauth2", user_token(tenant, cnf_jkt=dpop_key.jkt))
    assert tenant.count("token") == 0


@pytest.mark.parametrize("connection", ["", None])
def test_token_vault_needs_a_connection(tenant, connection):
    with pytest.raises(ValueError, match="connection"):
        get_access_token_for_connection(connection, user_token(tenant))


def test_an_extra_list_reaches_the_tenant_as_repeated_parameters(tenant):
    get_token_by_exchange_profile(
        "legacy-session-1", EXTERNAL, audience=DOWNSTREAM, extra={"device": ["laptop", "phone"]}
    )

    assert tenant.token_requests[0].form["device"] == ["laptop", "phone"]
