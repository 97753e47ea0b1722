"""The Helm chart: lint --strict, render every documented mode, validate against Kubernetes.

Runs the real Helm v4 Go SDK in-process (``helm-python-sdk``) and validates every rendered
object offline against the Kubernetes 1.30 schemas and the newest the validator knows, in
strict mode (``kubernetes-validate``). Both come with the ``helm`` extra that ``make test``
installs; without them the module skips with that reason.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.settings import Settings

helm = pytest.importorskip(
    "helm_python", reason="the chart tests need the helm extra: pip install -e '.[helm]'"
)
kv = pytest.importorskip(
    "kubernetes_validate.utils", reason="the chart tests need the helm extra (kubernetes-validate)"
)

CHART = Path(__file__).resolve().parents[1] / "helm" / "sluis"
IMAGE = {"image": {"repository": "registry.example/sluis"}}
PROXY = {
    "mode": "proxy",
    "trustedProxies": ["10.8.0.0/16"],
    "networkPolicy": {
        "proxySelector": {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "envoy"}}}
    },
}
#: Every mode docs/deployment.md documents.
MODES: dict[str, dict[str, Any]] = {
    "default-mtls": {},
    "mtls-client-auth-required": {"tls": {"clientAuth": "required"}},
    "proxy": PROXY,
    "postgres-several-replicas": {"replicaCount": 4},
    "one-replica": {"replicaCount": 1},
    "cert-manager": {
        "tls": {"certManager": {"enabled": True, "issuerRef": {"name": "internal-ca"}}}
    },
    "digest": {"image": {"digest": "sha256:" + "ab" * 32}},
    "cert-manager-client-ca": {
        "tls": {
            "certManager": {"enabled": True, "issuerRef": {"name": "internal-ca"}},
            "clientCaCertManager": {"enabled": True},
        }
    },
}
K8S_VERSIONS = ["1.30", kv.latest_version()]
#: Custom resources the validator has no schema for; checked by hand below.
CRDS = {"Certificate", "Issuer"}


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _render(values: dict[str, Any], release: str = "sluis") -> dict[str, dict[str, Any]]:
    """``kind/name`` to object, for the chart rendered with ``values`` (plus the image)."""
    chart = helm.Chart.load(str(CHART))
    manifests = chart.render(_merge(IMAGE, values), name=release, namespace="gw", is_install=True)
    objects: dict[str, dict[str, Any]] = {}
    for path, text in manifests.items():
        if path.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                objects[f"{doc['kind']}/{doc['metadata']['name']}"] = doc
    return objects


def _refusal(values: dict[str, Any]) -> str:
    with pytest.raises(helm.HelmError) as caught:
        _render(values)
    return str(caught.value)


def _pod_specs(objects: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    specs = []
    for doc in objects.values():
        if doc["kind"] in {"Deployment", "Job"}:
            specs.append(doc["spec"]["template"]["spec"])
        elif doc["kind"] == "CronJob":
            specs.append(doc["spec"]["jobTemplate"]["spec"]["template"]["spec"])
        elif doc["kind"] == "Pod":
            specs.append(doc["spec"])
    return specs


def test_chart_files() -> None:
    assert (CHART / ".helmignore").is_file()
    assert json.loads((CHART / "values.schema.json").read_text())["additionalProperties"] is False
    assert yaml.safe_load((CHART / "values.yaml").read_text())["mode"] == "mtls"


@pytest.mark.parametrize("mode", MODES)
def test_lint_strict(mode: str) -> None:
    report = helm.lint(str(CHART), _merge(IMAGE, MODES[mode]), strict=True, namespace="gw")
    assert report["errors"] == [], report
    assert [m for m in report["messages"] if m["severity"] >= 2] == [], report


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("mode", MODES)
def test_every_object_validates(mode: str, version: str) -> None:
    for key, doc in _render(MODES[mode]).items():
        if doc["kind"] in CRDS:
            continue
        try:
            kv.validate(doc, version, strict=True)
        except kv.ValidationError as exc:
            pytest.fail(f"{key} is not valid Kubernetes {version}: {exc.message}")


@pytest.mark.parametrize("mode", MODES)
def test_settings_exist_and_secrets_are_files(mode: str) -> None:
    known = {f"SLUIS_{name.upper()}" for name in Settings.model_fields}
    for spec in _pod_specs(_render(MODES[mode])):
        for container in spec["containers"]:
            env = container.get("env", [])
            names = {e["name"] for e in env if e["name"].startswith("SLUIS_")}
            assert names <= known, names - known
            assert "SLUIS_DATABASE_URL" not in names  # the URL holds a password: a file
            assert not [e for e in env if "secretKeyRef" in e.get("valueFrom", {})]
            mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
            files = [
                e.get("value", "")
                for e in env
                if e["name"].endswith(("_FILE", "_CA", "_CRL", "_CERT", "_KEY"))
            ]
            assert all(any(f.startswith(m) for m in mounts) for f in files), files


@pytest.mark.parametrize("mode", MODES)
def test_pods_run_as_the_image_user_with_fs_group(mode: str) -> None:
    for spec in _pod_specs(_render(MODES[mode])):
        # A token only for the CRL job, whose Role may get and patch the CRL ConfigMap.
        crl_job = spec.get("serviceAccountName") == "sluis-crl"
        assert spec["automountServiceAccountToken"] is crl_job
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True
        assert pod["runAsUser"] == pod["fsGroup"] == 10001  # keys mount 0440 root:10001
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"] == {"drop": ["ALL"]}
        for volume in spec.get("volumes", []):
            if "secret" in volume:
                assert volume["secret"]["defaultMode"] == 0o440


@pytest.mark.parametrize("mode", MODES)
def test_probes_use_the_plain_health_port(mode: str) -> None:
    deployment = _render(MODES[mode])["Deployment/sluis"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert env["SLUIS_HEALTH_PORT"]["value"] == str(ports["health"])
    assert env["SLUIS_HEALTH_HOST"]["value"] == "$(POD_IP)"
    assert list(env).index("POD_IP") < list(env).index("SLUIS_HEALTH_HOST")
    paths = {}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        get = container[probe]["httpGet"]
        assert (get["port"], get["scheme"]) == ("health", "HTTP"), probe
        paths[probe] = get["path"]
    assert paths == {
        "startupProbe": "/healthz",
        "readinessProbe": "/readyz",
        "livenessProbe": "/healthz",
    }


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value") for e in container["env"]}


def test_a_stopping_pod_keeps_serving_until_it_leaves_the_endpoints() -> None:
    """SIGTERM and the removal from the Service's endpoints happen at once: the pod sleeps
    in preStop (still accepting) before the gateway drains, within the grace period."""
    spec = _render({})["Deployment/sluis"]["spec"]["template"]["spec"]
    assert spec["terminationGracePeriodSeconds"] == 60
    assert spec["containers"][0]["lifecycle"] == {"preStop": {"sleep": {"seconds": 5}}}
    # The responses under way get what is left of the grace period but 10 s, in which the
    # gateway cancels the rest and records their exchanges before it exits.
    assert _env(spec["containers"][0])["SLUIS_SHUTDOWN_TIMEOUT"] == "45"
    spec = _render({"shutdown": {"preStopSleepSeconds": 0, "terminationGracePeriodSeconds": 20}})[
        "Deployment/sluis"
    ]["spec"]["template"]["spec"]
    assert spec["terminationGracePeriodSeconds"] == 20
    assert "lifecycle" not in spec["containers"][0]
    assert _env(spec["containers"][0])["SLUIS_SHUTDOWN_TIMEOUT"] == "10"


def test_pdb_only_with_several_replicas() -> None:
    assert not [k for k in _render({"replicaCount": 1}) if k.startswith("PodDisruptionBudget")]
    pdb = _render({"replicaCount": 3})["PodDisruptionBudget/sluis"]
    assert pdb["spec"] == {
        "maxUnavailable": 1,
        "selector": {"matchLabels": pdb["spec"]["selector"]["matchLabels"]},
    }


def test_network_policy_admits_only_the_proxy_in_proxy_mode() -> None:
    policy = _render(PROXY)["NetworkPolicy/sluis"]
    gateway, health = policy["spec"]["ingress"]
    assert gateway["ports"] == [{"port": "gateway", "protocol": "TCP"}]
    assert gateway["from"] == [
        {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "envoy"}}}
    ]
    assert health == {"ports": [{"port": "health", "protocol": "TCP"}]}
    assert "NetworkPolicy/sluis" in _render({})


def test_names_labels_and_selectors() -> None:
    objects = _render({})
    assert "Deployment/sluis" in objects  # not sluis-sluis
    assert "Deployment/acme-sluis" in _render({}, release="acme")
    for key, doc in objects.items():
        labels = doc["metadata"]["labels"]
        assert labels["helm.sh/chart"] == "sluis-0.2.0", key
        assert labels["app.kubernetes.io/component"], key
    selector = objects["Service/sluis"]["spec"]["selector"]
    job_labels = objects["Job/sluis-migrate"]["spec"]["template"]["metadata"]["labels"]
    assert not selector.items() <= job_labels.items()  # migration pods get no traffic
    deployment = objects["Deployment/sluis"]["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= deployment.items()
    account = objects["ServiceAccount/sluis"]
    assert account["automountServiceAccountToken"] is False
    assert objects["Deployment/sluis"]["spec"]["template"]["spec"]["serviceAccountName"] == "sluis"


def test_migration_job_mounts_only_the_database() -> None:
    job = _render({})["Job/sluis-migrate"]["spec"]["template"]["spec"]
    assert [v["name"] for v in job["volumes"]] == ["database", "home"]
    assert job["securityContext"]["fsGroup"] == 10001


def test_app_version_is_the_tag_make_image_builds() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    pyproject = (CHART.parents[1] / "pyproject.toml").read_text()
    assert f'version = "{chart["appVersion"]}"' in pyproject.splitlines()


def test_image_tag_and_digest() -> None:
    app_version = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]

    def image(values: dict[str, Any]) -> str:
        container = _render(values)["Deployment/sluis"]["spec"]["template"]["spec"]
        return str(container["containers"][0]["image"])

    assert image({}) == f"registry.example/sluis:{app_version}"
    assert image({"image": {"tag": "0.9.1"}}) == "registry.example/sluis:0.9.1"
    digest = "sha256:" + "ab" * 32
    assert image({"image": {"digest": digest}}) == f"registry.example/sluis@{digest}"
    pulls = _render({"imagePullSecrets": [{"name": "regcred"}]})["Deployment/sluis"]
    assert pulls["spec"]["template"]["spec"]["imagePullSecrets"] == [{"name": "regcred"}]


def test_scheduling_values_reach_the_pods() -> None:
    values = {
        "affinity": {"podAntiAffinity": {}},
        "tolerations": [{"key": "dedicated", "operator": "Exists"}],
        "topologySpreadConstraints": [
            {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "ScheduleAnyway"}
        ],
        "nodeSelector": {"pool": "gw"},
    }
    spec = _render(values)["Deployment/sluis"]["spec"]["template"]["spec"]
    for key, value in values.items():
        assert spec[key] == value


def test_cert_manager_certificate_feeds_the_server_secret() -> None:
    objects = _render(MODES["cert-manager"])
    certificate = objects["Certificate/sluis-server"]
    assert certificate["apiVersion"] == "cert-manager.io/v1"
    assert certificate["spec"]["dnsNames"] == ["sluis.example.org"]
    assert certificate["spec"]["issuerRef"]["name"] == "internal-ca"
    volumes = objects["Deployment/sluis"]["spec"]["template"]["spec"]["volumes"]
    server = next(v for v in volumes if v["name"] == "server-tls")
    assert server["secret"]["secretName"] == certificate["spec"]["secretName"]


def test_cert_manager_client_ca_is_mounted_without_its_key() -> None:
    objects = _render(MODES["cert-manager-client-ca"])
    bootstrap = objects["Issuer/sluis-client-ca-bootstrap"]
    assert bootstrap["spec"] == {"selfSigned": {}}
    ca = objects["Certificate/sluis-client-ca"]["spec"]
    assert ca["isCA"] is True
    assert ca["issuerRef"] == {
        "name": "sluis-client-ca-bootstrap",
        "kind": "Issuer",
        "group": "cert-manager.io",
    }
    assert ca["privateKey"]["rotationPolicy"] == "Never"
    assert set(ca["usages"]) == {"cert sign", "crl sign", "digital signature"}
    assert objects["Issuer/sluis-client-ca"]["spec"] == {"ca": {"secretName": ca["secretName"]}}
    key_readers = []
    for spec in _pod_specs(objects):
        for volume in spec.get("volumes", []):
            if volume.get("secret", {}).get("secretName") != ca["secretName"]:
                continue
            if {"key": "tls.key", "path": "tls.key"} in volume["secret"]["items"]:
                key_readers.append(spec["serviceAccountName"])
            else:
                assert volume["secret"]["items"] == [{"key": "ca.crt", "path": "bundle.pem"}]
    assert key_readers == ["sluis-crl"]  # only the CRL job reads the CA key
    volumes = objects["Deployment/sluis"]["spec"]["template"]["spec"]["volumes"]
    client_ca = next(v for v in volumes if v["name"] == "client-ca")
    assert client_ca["secret"]["secretName"] == ca["secretName"]
    assert "configMap" not in client_ca
    assert "ConfigMap" not in {doc["kind"] for doc in objects.values()}


def test_client_ca_from_a_config_map_by_default() -> None:
    objects = _render({})
    assert not [key for key in objects if key.startswith("Issuer/")]
    volumes = objects["Deployment/sluis"]["spec"]["template"]["spec"]["volumes"]
    client_ca = next(v for v in volumes if v["name"] == "client-ca")
    assert client_ca == {"name": "client-ca", "configMap": {"name": "sluis-client-ca"}}


def test_helm_test_hook_asks_readyz() -> None:
    objects = _render({})
    pod = objects["Pod/sluis-test-readyz"]
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert "http://sluis-health:8081/readyz" in pod["spec"]["containers"][0]["args"][0]
    health = objects["Service/sluis-health"]["spec"]
    assert (health["type"], health["ports"][0]["targetPort"]) == ("ClusterIP", "health")


def test_gateway_service_exposes_only_the_gateway_port() -> None:
    service = _render({"service": {"type": "LoadBalancer"}})["Service/sluis"]["spec"]
    assert [p["targetPort"] for p in service["ports"]] == ["gateway"]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"replicaCount": "two"}, "at '/replicaCount': got string, want integer"),
        ({"replicaCount": 0}, "/replicaCount"),
        ({"mode": "tls"}, "value must be one of 'mtls', 'proxy'"),
        ({"tls": {"clientAuth": "sometimes"}}, "/tls/clientAuth"),
        ({"publicUrl": "http://x"}, "/publicUrl"),
        ({"image": {"digest": "latest"}}, "/image/digest"),
        ({"replicas": 2}, "additional properties 'replicas' not allowed"),
        ({"extraSettings": {"DATABASE_URL": "x"}}, "does not match pattern '^SLUIS_"),
        ({"extraSettings": {"SLUIS_DATABASE_URL": "postgresql://u:p@h/d"}}, "SLUIS_DATABASE_URL"),
        ({"image": {"repository": ""}}, "image.repository is required"),
        ({"shutdown": {"preStopSleepSeconds": -1}}, "/shutdown/preStopSleepSeconds"),
        ({"shutdown": {"terminationGracePeriodSeconds": "60"}}, "/shutdown/terminationGrace"),
        (
            {"shutdown": {"preStopSleepSeconds": 30, "terminationGracePeriodSeconds": 30}},
            "shutdown.terminationGracePeriodSeconds must exceed shutdown.preStopSleepSeconds by",
        ),
        (
            {"shutdown": {"preStopSleepSeconds": 5, "terminationGracePeriodSeconds": 15}},
            "must exceed shutdown.preStopSleepSeconds by more than 10 s",
        ),
        ({**PROXY, "trustedProxies": []}, "needs trustedProxies"),
        (
            {"mode": "proxy", "trustedProxies": ["10.0.0.0/8"]},
            "needs networkPolicy.proxySelector",
        ),
        ({"tls": {"certManager": {"enabled": True}}}, "needs tls.certManager.issuerRef.name"),
        ({"tls": {"clientCaCertManager": {"enabled": "yes"}}}, "/tls/clientCaCertManager/enabled"),
        (
            {"tls": {"clientCaCertManager": {"duration": "10y"}}},
            "/tls/clientCaCertManager/duration",
        ),
        (
            {"tls": {"clientCaCertManager": {"crl": {"schedule": "every hour"}}}},
            "/tls/clientCaCertManager/crl/schedule",
        ),
        (
            {"tls": {"clientCaCertManager": {"crl": {"days": 0}}}},
            "/tls/clientCaCertManager/crl/days",
        ),
        (
            {"tls": {"clientCaCertManager": {"crl": {"days": "7"}}}},
            "at '/tls/clientCaCertManager/crl/days': got string, want integer",
        ),
    ],
    ids=lambda v: json.dumps(v) if isinstance(v, dict) else "",
)
def test_bad_values_are_refused_clearly(values: dict[str, Any], message: str) -> None:
    assert message in _refusal(values)


CLIENT_CA = MODES["cert-manager-client-ca"]
CRL_CONTAINER_ARGS = [
    "certs",
    "publish-crl",
    "--ca-cert=/etc/sluis/client-ca-key/tls.crt",
    "--ca-key=/etc/sluis/client-ca-key/tls.key",
    "--configmap=sluis-crl",
    "--days=7",
]


def test_crl_cronjob_signs_the_cert_manager_client_ca_crl() -> None:
    objects = _render(CLIENT_CA)
    cron = objects["CronJob/sluis-crl"]["spec"]
    assert cron["schedule"] == "17 */6 * * *"
    assert cron["concurrencyPolicy"] == "Forbid"
    job = cron["jobTemplate"]["spec"]
    assert job["backoffLimit"] >= 1
    pod = job["template"]["spec"]
    assert (pod["serviceAccountName"], pod["automountServiceAccountToken"]) == ("sluis-crl", True)
    assert pod["restartPolicy"] == "Never"
    assert pod["securityContext"]["runAsUser"] == pod["securityContext"]["fsGroup"] == 10001
    (container,) = pod["containers"]
    assert container["command"] == ["sluis"]
    assert container["args"] == CRL_CONTAINER_ARGS
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert set(volumes) == {"database", "home", "client-ca-key"}  # no signing or audit key
    assert volumes["client-ca-key"]["secret"] == {
        "secretName": "sluis-client-ca",
        "defaultMode": 0o440,
        "items": [{"key": "tls.crt", "path": "tls.crt"}, {"key": "tls.key", "path": "tls.key"}],
    }
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["SLUIS_DATABASE_URL_FILE"] == "/etc/sluis/database/url"
    assert env["SLUIS_AUTO_MIGRATE"] == "false"


def test_crl_job_may_get_and_patch_only_the_crl_config_map() -> None:
    objects = _render(_merge(CLIENT_CA, {"tls": {"crlConfigMap": "participants-crl"}}))
    assert objects["Role/sluis-crl"]["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": ["participants-crl"],
            "verbs": ["get", "patch"],
        }
    ]
    binding = objects["RoleBinding/sluis-crl"]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "sluis-crl",
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "sluis-crl", "namespace": "gw"}
    ]
    assert objects["ServiceAccount/sluis-crl"]["automountServiceAccountToken"] is False
    assert not [k for k in objects if k.startswith(("ClusterRole", "ClusterRoleBinding"))]
    pod = objects["CronJob/sluis-crl"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert "--configmap=participants-crl" in pod["containers"][0]["args"]
    gateway = objects["Deployment/sluis"]["spec"]["template"]["spec"]
    assert gateway["serviceAccountName"] == "sluis"
    volumes = {v["name"]: v for v in gateway["volumes"]}
    assert volumes["crl"] == {"name": "crl", "configMap": {"name": "participants-crl"}}


def test_crl_cronjob_only_with_the_cert_manager_client_ca() -> None:
    crl_objects = ("CronJob/", "Role/", "RoleBinding/", "ServiceAccount/sluis-crl")
    assert not [k for k in _render({}) if k.startswith(crl_objects)]
    off = _merge(CLIENT_CA, {"tls": {"clientCaCertManager": {"crl": {"enabled": False}}}})
    assert not [k for k in _render(off) if k.startswith(crl_objects)]
    zoned = _merge(CLIENT_CA, {"tls": {"clientCaCertManager": {"crl": {"timeZone": "Etc/UTC"}}}})
    assert _render(zoned)["CronJob/sluis-crl"]["spec"]["timeZone"] == "Etc/UTC"


@pytest.mark.parametrize("mode", MODES)
def test_every_container_runs_a_real_sluis_command(mode: str) -> None:
    """``command: [sluis]`` plus args that name a command of the CLI, with options it has."""
    import click  # noqa: PLC0415 - typer's parser, only here
    import typer  # noqa: PLC0415

    from gateway.cli.main import app  # noqa: PLC0415

    for spec in _pod_specs(_render(MODES[mode])):
        for container in spec["containers"]:
            if container["name"] == "readyz":  # the helm test pod asks /readyz with python
                continue
            assert container["command"] == ["sluis"]  # the image's entry point, said explicitly
            group: Any = typer.main.get_command(app)
            args = list(container["args"])
            while isinstance(group, click.Group):
                group = group.get_command(click.Context(group), args.pop(0))
                assert group is not None, container["args"]
            group.make_context("sluis", args)  # unknown options or missing ones raise
