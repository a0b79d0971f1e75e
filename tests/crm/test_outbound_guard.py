"""The outbound guard: no request to a CRM reaches a loopback, link-local, private,
multicast or reserved address unless OPTOUT_CRM_ALLOWED_HOSTS names the host; answers
naming another host are not followed; failures are told in plain words, with the CRM's
status and never its body; a Salesforce key file is read only from the key folder."""

from __future__ import annotations

import http.server
import ipaddress
import json
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from fastapi import Request, Response
from sqlalchemy.engine import Engine

from optout.crm import connections, manage, outbound
from optout.crm.http import Http
from optout.crm.outbound import OutboundRefused, check_host, forbidden
from optout.crm.salesforce import SalesforceConnector, read_key
from optout.crypto import new_key
from optout.errors import ConnectorError, InvalidInput
from tests.crm.conftest import ENV, connect_workspace
from tests.crm.emulators.common import FakeClock
from tests.crm.emulators.hubspot import HubSpot
from tests.crm.emulators.rogue import Answer, Rogue
from tests.crm.emulators.salesforce import Salesforce
from tests.factories import World
from tests.web.conftest import serving

ALLOW_LOOPBACK = frozenset({"127.0.0.1"})
HUBSPOT_SECRETS = {"token": "OPTOUT_TEST_HUBSPOT_TOKEN"}
HUBSPOT_SETTINGS = {"requests_per_10s": None, "search_per_second": None}
LOCAL_SPELLINGS = [
    "127.0.0.1",
    "127.1",
    "2130706433",  # 127.0.0.1 as one integer
    "017700000001",  # ... in octal
    "0x7f.0.0.1",
    "localhost",
    "::1",
    "::ffff:127.0.0.1",  # IPv4-mapped IPv6
    "0.0.0.0",
]
FORBIDDEN = [
    "10.0.0.1",
    "172.16.5.4",
    "192.168.1.1",
    "169.254.169.254",  # the cloud metadata address
    "100.64.0.1",  # shared (carrier-grade NAT)
    "224.0.0.1",  # multicast
    "240.0.0.1",  # reserved
    "fe80::1",
    "fc00::1",
    "ff02::1",
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
    "2002:a00:1::",  # 6to4 of 10.0.0.1
    "2001:db8::1",  # documentation
]


@pytest.fixture
def rogues() -> Iterator[Callable[[Answer], Rogue]]:
    with ExitStack() as stack:

        def start(answer: Answer) -> Rogue:
            rogue = Rogue(answer=answer)
            rogue.url = stack.enter_context(serving(rogue.app))
            return rogue

        yield start


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


# --- the guard itself ------------------------------------------------------------------


@pytest.mark.parametrize("host", LOCAL_SPELLINGS)
def test_R34_a_crm_host_spelled_as_any_local_address_is_refused(host: str) -> None:
    with pytest.raises(OutboundRefused, match="does not send requests to"):
        check_host(host, 443, name="HubSpot", allowed=frozenset())


@pytest.mark.parametrize("address", FORBIDDEN)
def test_R34_private_link_local_multicast_and_reserved_addresses_are_forbidden(
    address: str,
) -> None:
    assert forbidden(ipaddress.ip_address(address))


def test_R34_a_public_name_is_pinned_to_the_address_checked_and_any_private_answer_refuses_it() -> (
    None
):
    public = ipaddress.ip_address("93.184.215.14")
    assert not forbidden(public)
    assert (
        check_host("crm.example", 443, name="X", allowed=frozenset(), lookup=lambda h, p: [public])
        == public
    )
    mixed = [public, ipaddress.ip_address("10.0.0.7")]  # a name that also resolves inside
    with pytest.raises(OutboundRefused):
        check_host("crm.example", 443, name="X", allowed=frozenset(), lookup=lambda h, p: mixed)
    assert check_host("127.0.0.1", 80, name="X", allowed=ALLOW_LOOPBACK) is None


def test_R34_a_host_allowed_by_name_allows_no_other_spelling_of_it(
    rogues: Callable[[Answer], Rogue],
) -> None:
    rogue = rogues(lambda _r: Response("{}", media_type="application/json"))
    port = _port(rogue.url)
    for spelling in ("localhost", "2130706433", "[::ffff:127.0.0.1]", "127.1"):
        http = Http(
            f"http://{spelling}:{port}", name="HubSpot", headers=dict, allowed_hosts=ALLOW_LOOPBACK
        )
        with pytest.raises(OutboundRefused):
            http.request("GET", "/crm/v3/objects/contacts")
        http.close()
    assert rogue.hits == []
    allowed = Http(rogue.url, name="HubSpot", headers=dict, allowed_hosts=ALLOW_LOOPBACK)
    assert allowed.json("GET", "/x") == {}
    allowed.close()


def test_R34_a_crm_url_on_a_private_address_is_refused_and_the_token_never_sent(
    fresh_engine: Engine, clock: FakeClock, start_hubspot: Callable[..., HubSpot]
) -> None:
    hubspot = start_hubspot()
    crm = connect_workspace(
        fresh_engine, clock, kind="hubspot", base_url=hubspot.url, secrets=HUBSPOT_SECRETS,
        settings=HUBSPOT_SETTINGS,
    )  # fmt: skip
    without_allowed = {k: v for k, v in ENV.items() if k != "OPTOUT_CRM_ALLOWED_HOSTS"}

    result = manage.test(
        fresh_engine, workspace_id=crm.ws, kind="hubspot", env=without_allowed, keys=()
    )

    assert not result.ok
    assert "does not send requests to 127.0.0.1" in result.message
    assert "OPTOUT_CRM_ALLOWED_HOSTS" in result.message
    assert sum(hubspot.calls.values()) == 0
    allowed = manage.test(fresh_engine, workspace_id=crm.ws, kind="hubspot", env=ENV, keys=())
    assert allowed.ok, allowed.message


def test_R34_a_redirect_to_an_internal_address_is_not_followed(
    rogues: Callable[[Answer], Rogue],
) -> None:
    internal = rogues(lambda _r: Response("internal secrets"))
    target = f"http://localhost:{_port(internal.url)}/latest/meta-data"
    crm = rogues(lambda _r: Response(status_code=307, headers={"Location": target}))
    http = Http(
        crm.url,
        name="HubSpot",
        headers=lambda: {"Authorization": "Bearer t"},
        allowed_hosts=ALLOW_LOOPBACK,
    )

    with pytest.raises(ConnectorError) as caught:
        http.request("GET", "/crm/v3/objects/contacts")
    http.close()

    assert internal.hits == []
    assert caught.value.message == (
        "HubSpot answered HTTP 307: it sent optout to another address, which optout does not follow"
    )


def _salesforce_answering(
    token_answer: dict[str, object], query_answer: dict[str, object]
) -> Answer:
    def answer(request: Request) -> Response:
        body = token_answer if request.url.path.endswith("/token") else query_answer
        return Response(json.dumps(body), media_type="application/json")

    return answer


def test_R34_salesforce_answers_naming_another_host_are_not_followed(
    rogues: Callable[[Answer], Rogue],
) -> None:
    internal = rogues(lambda _r: Response("{}", media_type="application/json"))
    elsewhere = f"http://localhost:{_port(internal.url)}"
    crm = rogues(
        _salesforce_answering(
            {"access_token": "t0k", "instance_url": elsewhere},
            {
                "records": [],
                "done": False,
                "nextRecordsUrl": f"{elsewhere}/services/data/v60.0/query/01g-2000",
            },
        )
    )
    connector = SalesforceConnector(
        base_url=crm.url,
        fields={},
        settings={"client_id": "id"},
        secrets={"client_secret": "s"},
        allowed_hosts=ALLOW_LOOPBACK,
        max_retries=0,
    )

    with pytest.raises(ConnectorError, match="another host"):
        list(connector.changes("Lead", since=None))
    connector.close()

    assert internal.hits == []  # neither the instance_url nor the nextRecordsUrl
    assert crm.hits == ["POST /services/oauth2/token", "GET /services/data/v60.0/query"]


def test_R34_a_salesforce_login_url_on_a_private_address_is_refused(
    rogues: Callable[[Answer], Rogue],
) -> None:
    login = rogues(_salesforce_answering({"access_token": "t"}, {}))
    connector = SalesforceConnector(
        base_url="https://acme.my.salesforce.com",
        fields={},
        settings={"client_id": "id", "login_url": f"http://localhost:{_port(login.url)}"},
        secrets={"client_secret": "the-client-secret"},
        allowed_hosts=ALLOW_LOOPBACK,
        max_retries=0,
    )

    with pytest.raises(OutboundRefused, match="does not send requests to localhost"):
        list(connector.changes("Lead", since=None))
    connector.close()

    assert login.hits == []


@pytest.mark.parametrize(
    ("base_url", "login_url"),
    [
        ("http://127.0.0.1:8080", ""),
        ("http://2130706433/", ""),
        ("http://0x7f.1/", ""),
        ("http://[::1]:8080", ""),
        ("http://LOCALHOST", ""),
        ("http://169.254.169.254/latest", ""),
        ("https://10.1.2.3", ""),
        ("https://acme.my.salesforce.com", "http://192.168.0.10"),
    ],
)
def test_R34_a_connection_saved_with_a_local_or_private_address_is_refused(
    world: World, now: datetime, base_url: str, login_url: str
) -> None:
    with pytest.raises(InvalidInput, match="does not send requests to"):
        manage.connect(
            world.db,
            workspace_id=world.ws,
            kind="salesforce",
            base_url=base_url,
            settings={"login_url": login_url} if login_url else {},
            secrets={},
            keys=(),
            now=now,
        )
    assert connections.for_workspace(world.db, workspace_id=world.ws) == []
    saved = manage.connect(
        world.db,
        workspace_id=world.ws,
        kind="hubspot",
        base_url="http://127.0.0.1:8080",
        settings={},
        secrets={"token": "pat-na1-local-crm"},
        keys=(new_key(),),
        now=now,
        allowed_hosts=ALLOW_LOOPBACK,
    )
    assert saved.base_url == "http://127.0.0.1:8080"


# --- what the person is told -----------------------------------------------------------


def test_R34_a_crm_answer_is_told_by_its_status_and_a_sentence_never_its_body(
    rogues: Callable[[Answer], Rogue],
) -> None:
    crm = rogues(lambda _r: Response("root:x:0:0:INTERNAL-BODY", status_code=401))
    http = Http(crm.url, name="HubSpot", headers=dict, allowed_hosts=ALLOW_LOOPBACK, max_retries=0)

    with pytest.raises(ConnectorError) as caught:
        http.request("GET", "/crm/v3/objects/contacts")
    http.close()

    assert caught.value.message == "HubSpot answered HTTP 401: it did not accept the credentials"


def test_R34_a_crm_answering_200_with_html_gives_a_clear_error(
    fresh_engine: Engine, clock: FakeClock, rogues: Callable[[Answer], Rogue]
) -> None:
    crm = rogues(lambda _r: Response("<html><body>Welcome to the router</body></html>"))
    world = connect_workspace(
        fresh_engine, clock, kind="hubspot", base_url=crm.url, secrets=HUBSPOT_SECRETS,
        settings=HUBSPOT_SETTINGS,
    )  # fmt: skip

    result = manage.test(fresh_engine, workspace_id=world.ws, kind="hubspot", env=ENV, keys=())
    report = world.sync()

    expected = (
        "HubSpot answered 200 but not with a JSON object, as its API does: check that the "
        "address is the one of HubSpot's API"
    )
    assert not result.ok
    assert expected in result.message
    assert "router" not in result.message
    assert report.status == "failed"
    assert report.error is not None
    assert expected in report.error


def test_R34_nothing_listening_is_said_in_plain_words() -> None:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    http = Http(
        f"http://127.0.0.1:{port}",
        name="HubSpot",
        headers=dict,
        allowed_hosts=ALLOW_LOOPBACK,
        max_retries=0,
    )

    with pytest.raises(ConnectorError) as caught:
        http.request("GET", "/crm/v3/objects/contacts")
    http.close()

    assert caught.value.message == (
        f"HubSpot: nothing is listening at 127.0.0.1:{port} (connection refused)"
    )
    assert "Errno" not in caught.value.message


def test_R34_the_connection_test_says_nothing_is_listening_in_plain_words(
    fresh_engine: Engine, clock: FakeClock
) -> None:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    crm = connect_workspace(
        fresh_engine, clock, kind="hubspot", base_url=f"http://127.0.0.1:{port}",
        secrets=HUBSPOT_SECRETS, settings=HUBSPOT_SETTINGS,
    )  # fmt: skip

    result = manage.test(fresh_engine, workspace_id=crm.ws, kind="hubspot", env=ENV, keys=())

    assert not result.ok
    assert result.message == (
        f"HubSpot: nothing is listening at 127.0.0.1:{port} (connection refused)"
    )


def test_R34_a_crm_that_never_answers_is_given_up_on_after_the_read_timeout() -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    accepted: list[socket.socket] = []
    threading.Thread(target=lambda: accepted.append(silent.accept()[0]), daemon=True).start()
    port = silent.getsockname()[1]
    http = Http(
        f"http://127.0.0.1:{port}", name="HubSpot", headers=dict, allowed_hosts=ALLOW_LOOPBACK,
        max_retries=0, read_timeout=0.5,
    )  # fmt: skip

    with pytest.raises(ConnectorError) as caught:
        http.request("GET", "/crm/v3/objects/contacts")
    http.close()
    silent.close()
    for connection in accepted:
        connection.close()

    assert caught.value.message == (
        f"HubSpot did not answer within 0.5 seconds (http://127.0.0.1:{port})"
    )


def test_R34_every_crm_call_has_a_short_connect_and_a_bounded_read_timeout() -> None:
    http = Http("https://api.hubapi.com", name="HubSpot", headers=dict)
    timeout = http._client.timeout
    http.close()
    assert timeout.connect is not None
    assert timeout.connect <= 10
    assert timeout.read is not None
    assert timeout.read <= 60


# --- the Salesforce key folder ---------------------------------------------------------


def test_R34_a_key_file_outside_the_key_folder_is_refused_alike_whether_it_exists(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "keys"
    folder.mkdir()
    (folder / "sf.key").write_bytes(b"-----BEGIN PRIVATE KEY-----\n")
    outside = tmp_path / "elsewhere.key"
    outside.write_bytes(b"-----BEGIN PRIVATE KEY-----\n")
    (folder / "link.key").symlink_to(outside)

    messages = set()
    for path in (str(outside), str(tmp_path / "missing.key"), "/etc/passwd", "/etc/no-such",
                 "../elsewhere.key", "link.key", "missing.key", str(folder)):  # fmt: skip
        with pytest.raises(ConnectorError) as caught:
            read_key(path, folder=folder)
        messages.add(caught.value.message.replace(repr(path), "PATH"))

    assert messages == {
        "the Salesforce private key PATH is not a readable file in the key folder "
        "(OPTOUT_CRM_KEY_FOLDER): put the key file there and give its name"
    }
    assert read_key("sf.key", folder=folder).startswith(b"-----BEGIN")
    assert read_key(str(folder / "sf.key"), folder=folder).startswith(b"-----BEGIN")
    with pytest.raises(ConnectorError, match="set OPTOUT_CRM_KEY_FOLDER"):
        read_key("sf.key", folder=None)


def test_R34_salesforce_jwt_with_a_key_outside_the_folder_signs_nothing_and_sends_nothing(
    fresh_engine: Engine,
    clock: FakeClock,
    start_salesforce: Callable[..., Salesforce],
    rsa_key: tuple[Path, bytes],
    tmp_path: Path,
) -> None:
    sf = start_salesforce()
    empty = tmp_path / "keys"
    empty.mkdir()
    crm = connect_workspace(
        fresh_engine,
        clock,
        kind="salesforce",
        base_url=sf.base_url,
        secrets={},
        settings={
            "auth": "jwt",
            "client_id": sf.client_id,
            "username": sf.username,
            "private_key_path": str(rsa_key[0]),  # a readable PEM, outside the folder
            "login_url": sf.base_url,
        },
    )
    env = {**ENV, "OPTOUT_CRM_KEY_FOLDER": str(empty)}

    result = manage.test(fresh_engine, workspace_id=crm.ws, kind="salesforce", env=env, keys=())

    assert not result.ok
    assert "is not a readable file in the key folder" in result.message
    assert sf.tokens_issued == 0


def _self_signed(folder: Path, name: str) -> tuple[Path, Path]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_R34_a_checked_name_is_connected_at_the_address_checked_and_tls_still_verifies_the_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = _self_signed(tmp_path, "crm.test")
    hosts: list[str] = []

    class Answer(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hosts.append(self.headers.get("Host", ""))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Answer)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    # The name resolves to the test server, which is taken here for a public address.
    monkeypatch.setattr(outbound, "forbidden", lambda _ip: False)
    lookups: list[str] = []

    def lookup(host: str, _port: int) -> list[outbound.IPAddress]:
        lookups.append(host)
        return [ipaddress.ip_address("127.0.0.1")]

    trusted = ssl.create_default_context(cafile=str(cert))
    try:
        for name, expected in (("crm.test", 200), ("other.test", None)):
            transport = outbound.GuardedTransport(
                name="HubSpot", allowed=frozenset(), verify=trusted, lookup=lookup
            )
            with httpx.Client(transport=transport) as client:
                if expected is None:
                    with pytest.raises(httpx.ConnectError, match="certificate verify failed"):
                        client.get(f"https://{name}:{port}/x")
                else:
                    assert client.get(f"https://{name}:{port}/x").status_code == expected
    finally:
        server.shutdown()
        server.server_close()

    assert lookups == ["crm.test", "other.test"]
    assert hosts == [f"crm.test:{port}"]
