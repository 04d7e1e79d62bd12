"""
What deploy/ holds for operators, each file checked by the tool made for it where this
machine has it, and against the others it must fit:

- systemd units (deploy/systemd/): `systemd-analyze verify` on a copy whose ExecStart
  names the built programs (verify wants them executable), any output a failure (it
  warns about unknown keys and bad values and still exits 0); the syscall filter leaves
  io_uring's three calls allowed.
- HAProxy (deploy/haproxy/haproxy.cfg and the config `make cluster` writes):
  `haproxy -c -dW` (warnings fatal); its servers are the sample nodes' c2s listeners,
  with send-proxy-v2 and a /ready check on their admin port, and the nodes accept the
  PROXY header from HAProxy's address.
- Configs: `starling --check` on the sample, the three cluster nodes, those
  deploy/run-cluster.sh writes, and the Kubernetes ConfigMap's as the container's entry
  point completes it.
- Kubernetes (deploy/k8s/): every manifest parsed (python3-yaml), the fields each kind
  needs, and that the objects fit together (selectors, port names, volumes, Secrets,
  the entry point's peers naming each pod by a Service of its own, every file the config
  names in a mounted Secret).
- The container file: its instructions parsed (tests have no Docker daemon to build
  it), the files it copies present, the build stage's -dev packages those the Makefile
  links, and the runtime stage's packages those that hold every library the built
  programs need (DT_NEEDED).
- The container's entry point: the node's part of a shared config it writes, and the
  peers it looks up.
- `make cluster` for real (deploy/run-cluster.sh on 127.0.9.x): PostgreSQL, three nodes
  and HAProxy; logins through HAProxy, an account starlingctl makes seen by every node,
  Ctrl-C stopping everything.

Each checker is also shown to fail on a broken copy of its file.
"""
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import BIN, REPO

DEPLOY = REPO / "deploy"
SYSTEMD = DEPLOY / "systemd"
UNITS = ["starling.service", "starling@.service"]
NODE_CONFS = sorted((DEPLOY / "cluster").glob("node*.conf"))
K8S = DEPLOY / "k8s"
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
# What the container builds (`make install`): the release programs, also when the tests
# run against the sanitized ones, which load the sanitizers' libraries besides.
RELEASE = REPO / "build" / "release" / "bin"


def run(cmd, **kw):
    return subprocess.run(
        [str(c) for c in cmd], capture_output=True, text=True, timeout=60, **kw
    )


# ---- libconfig, as much of it as the samples use ----------------------------------------


def conf_get(text, name):
    """The value of group.key in a config written as the samples are (`group = {` and
    `};` at the start of a line): a string, a list of strings, or None."""
    group, key = name.split(".")
    m = re.search(r"^%s = \{\n(.*?)^\};" % re.escape(group), text, re.S | re.M)
    if not m:
        return None
    v = re.search(r"^\s*%s = (.*?);" % re.escape(key), m.group(1), re.S | re.M)
    if not v:
        return None
    v = v.group(1).strip()
    if v.startswith("["):
        return re.findall(r'"([^"]*)"', v)
    return v.strip('"')


# ---- starling --check --------------------------------------------------------------------


def starling_check(conf, cwd=None):
    return run([BIN / "starling", "--check", "--config", conf], cwd=cwd)


def test_check_flag_accepts_a_valid_config_and_starts_nothing(tmp_path):
    conf = tmp_path / "s.conf"
    conf.write_text('domain = "example.org";\n')
    r = starling_check(conf)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"{conf}: ok"
    # Nothing started: no database beside the config, nothing left running.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.conf"]


def test_check_flag_reports_a_mistake_with_file_and_line(tmp_path):
    conf = tmp_path / "s.conf"
    conf.write_text('domain = "example.org";\nc2s = {\n    max_depth = 2;\n};\n')
    r = starling_check(conf)
    assert r.returncode == 2
    assert f"{conf}:3: c2s.max_depth" in r.stderr
    assert run([BIN / "starling", "--check"]).returncode == 2  # no config: usage


def test_sample_config_checks():
    r = starling_check(DEPLOY / "starling.conf.sample")
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("conf", NODE_CONFS, ids=lambda p: p.name)
def test_cluster_node_config_checks(conf):
    r = starling_check(conf)
    assert r.returncode == 0, r.stderr


def test_cluster_node_configs_name_each_other():
    assert [c.name for c in NODE_CONFS] == ["node1.conf", "node2.conf", "node3.conf"]
    texts = [c.read_text() for c in NODE_CONFS]
    names = [conf_get(t, "cluster.node") for t in texts]
    links = [conf_get(t, "cluster.listen") for t in texts]
    assert len(set(names)) == 3 and len(set(links)) == 3
    for i, t in enumerate(texts):
        assert conf_get(t, "storage.backend") == "postgresql"
        others = {f"{n}={a}" for j, (n, a) in enumerate(zip(names, links)) if j != i}
        assert set(conf_get(t, "cluster.nodes")) == others


# ---- systemd -----------------------------------------------------------------------------


def systemd_verify(unit, tmp_path):
    """(ok, output) of systemd-analyze verify on a copy of unit whose programs are the
    built ones; a template is verified as an instance too."""
    text = unit.read_text().replace("/usr/local/bin/", f"{BIN}/")
    names = [unit.name]
    if unit.name.endswith("@.service"):
        names.append(unit.name.replace("@.", "@node1."))
    out = ""
    ok = True
    for n in names:
        (tmp_path / n).write_text(text)
        r = run(["systemd-analyze", "verify", "--man=no", f"./{n}"], cwd=tmp_path)
        out += r.stdout + r.stderr
        ok = ok and r.returncode == 0
    return ok and not out.strip(), out


needs_systemd_analyze = pytest.mark.skipif(
    not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed"
)


@needs_systemd_analyze
@pytest.mark.parametrize("name", UNITS)
def test_systemd_unit_verifies(name, tmp_path):
    ok, out = systemd_verify(SYSTEMD / name, tmp_path)
    assert ok, out


@needs_systemd_analyze
@pytest.mark.parametrize(
    "old,new",
    [
        ("LockPersonality=yes", "LockPersonality=maybe"),  # a bad value: a warning, exit 0
        ("NoNewPrivileges=yes", "NoNewPrivilege=yes"),  # an unknown key: likewise
        ("/usr/local/bin/starling --config", "/usr/local/bin/starlingd --config"),
    ],
)
def test_systemd_verify_fails_on_a_broken_unit(old, new, tmp_path):
    unit = tmp_path / "src" / "starling@.service"
    unit.parent.mkdir()
    text = (SYSTEMD / "starling@.service").read_text()
    assert old in text
    unit.write_text(text.replace(old, new))
    ok, out = systemd_verify(unit, tmp_path)
    assert not ok and out.strip()


def syscall_set(group):
    """The system calls a systemd set holds, its nested sets expanded."""
    r = run(["systemd-analyze", "syscall-filter", "--no-pager", group])
    calls = set()
    for line in r.stdout.splitlines()[1:]:
        w = line.strip()
        if not w or w.startswith("#"):
            continue
        calls |= syscall_set(w) if w.startswith("@") else {w}
    return calls


@needs_systemd_analyze
@pytest.mark.parametrize("name", UNITS)
def test_systemd_unit_allows_io_uring(name):
    allowed, denied = set(), set()
    for line in (SYSTEMD / name).read_text().splitlines():
        if not line.startswith("SystemCallFilter="):
            continue
        v = line.split("=", 1)[1]
        dest = denied if v.startswith("~") else allowed
        for w in v.lstrip("~").split():
            dest |= syscall_set(w) if w.startswith("@") else {w}
    need = {"io_uring_setup", "io_uring_enter", "io_uring_register"}
    assert need <= allowed - denied
    # What the supervisor and its children call besides: shared memory, their bells,
    # signals, SCHED_BATCH.
    assert {"memfd_create", "eventfd2", "signalfd4", "sched_setscheduler"} <= allowed - denied


# ---- HAProxy -----------------------------------------------------------------------------


def haproxy_check(cfg):
    r = run([HAPROXY, "-c", "-dW", "-f", cfg])
    return r.returncode == 0, r.stdout + r.stderr


def haproxy_backends(text):
    """backend name -> (its lines, its servers' addresses)."""
    out = {}
    for m in re.finditer(r"^backend (\S+)\n((?:[ \t]+.*\n?)*)", text, re.M):
        lines = [l.strip() for l in m.group(2).splitlines() if l.strip()]
        servers = [l.split()[2] for l in lines if l.startswith("server ")]
        out[m.group(1)] = (lines, servers)
    return out


def assert_haproxy_fits_nodes(text, node_texts, source):
    """Both backends: leastconn, PROXY v2, /ready checked on each node's admin port,
    servers exactly the nodes' c2s listeners; the nodes accept PROXY from source."""
    backends = haproxy_backends(text)
    assert len(backends) == 2
    admin_ports = {conf_get(t, "admin.listen").rsplit(":", 1)[1] for t in node_texts}
    assert len(admin_ports) == 1
    (admin_port,) = admin_ports
    by_port = {}
    for name, (lines, servers) in backends.items():
        assert "balance leastconn" in lines
        assert "option httpchk GET /ready" in lines
        assert "http-check expect status 200" in lines
        ds = next(l for l in lines if l.startswith("default-server "))
        assert "send-proxy-v2" in ds.split()
        assert f"check port {admin_port}" in ds
        by_port[servers[0].rsplit(":", 1)[1]] = set(servers)
    assert by_port == {
        "5222": {conf_get(t, "c2s.listen") for t in node_texts},
        "5223": {conf_get(t, "c2s.listen_tls") for t in node_texts},
    }
    for t in node_texts:
        assert source in conf_get(t, "c2s.proxy_from")


def test_haproxy_sample_checks():
    ok, out = haproxy_check(DEPLOY / "haproxy" / "haproxy.cfg")
    assert ok, out


def test_haproxy_sample_fits_the_cluster_sample():
    text = (DEPLOY / "haproxy" / "haproxy.cfg").read_text()
    assert_haproxy_fits_nodes(text, [c.read_text() for c in NODE_CONFS], "192.0.2.10")
    assert re.search(r"^\s*timeout client 1h$", text, re.M)
    assert re.search(r"^\s*timeout server 1h$", text, re.M)
    assert re.search(r"^\s*timeout tunnel 1h$", text, re.M)


@pytest.mark.parametrize(
    "old,new",
    [
        ("balance leastconn", "balance fewest"),  # an unknown algorithm: an error
        ("timeout client 1h", "timeout client 1h\n    bind :5224"),  # bind in defaults
        ("option redispatch", "option redispatch\n    reqadd X-Foo:\\ bar"),  # gone in 2.x
    ],
)
def test_haproxy_check_fails_on_a_broken_config(old, new, tmp_path):
    text = (DEPLOY / "haproxy" / "haproxy.cfg").read_text()
    assert old in text
    (tmp_path / "h.cfg").write_text(text.replace(old, new, 1))
    ok, _ = haproxy_check(tmp_path / "h.cfg")
    assert not ok


# ---- make cluster's configs --------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster_configs(tmp_path_factory):
    d = tmp_path_factory.mktemp("cluster")
    r = run([DEPLOY / "run-cluster.sh", BIN.parent, "--write-configs", d])
    assert r.returncode == 0, r.stderr
    return d


def test_run_cluster_haproxy_config_checks(cluster_configs):
    ok, out = haproxy_check(cluster_configs / "haproxy.cfg")
    assert ok, out
    text = (cluster_configs / "haproxy.cfg").read_text()
    nodes = [(cluster_configs / f"node{n}.conf").read_text() for n in (1, 2, 3)]
    assert_haproxy_fits_nodes(text, nodes, "127.0.0.10")
    assert re.search(r"^\s*bind 127\.0\.0\.1:5222$", text, re.M)
    assert re.search(r"^\s*bind 127\.0\.0\.1:5223$", text, re.M)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_run_cluster_node_config_checks(cluster_configs, n):
    conf = cluster_configs / f"node{n}.conf"
    r = starling_check(conf)
    assert r.returncode == 0, r.stderr
    text = conf.read_text()
    assert 'domain = "localhost";' in text
    assert conf_get(text, "storage.backend") == "postgresql"
    assert f"host={cluster_configs}/pgsock" in conf_get(text, "storage.dsn")
    for key in ("c2s.listen", "c2s.listen_tls", "s2s.listen", "admin.listen", "cluster.listen"):
        assert conf_get(text, key).startswith(f"127.0.0.1{n}:"), key


# ---- Kubernetes --------------------------------------------------------------------------


def k8s_objects():
    """Every object of deploy/k8s/*.yaml but the kustomization: (file, object)."""
    out = []
    for f in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(f.read_text()):
            if doc is not None and doc.get("kind") != "Kustomization":
                out.append((f.name, doc))
    return out


REQUIRED = {
    ("v1", "ConfigMap"): ["data"],
    ("v1", "Secret"): [],
    ("v1", "Service"): ["spec.ports", "spec.selector"],
    ("apps/v1", "StatefulSet"): [
        "spec.serviceName",
        "spec.replicas",
        "spec.selector.matchLabels",
        "spec.template.metadata.labels",
        "spec.template.spec.containers",
    ],
    ("policy/v1", "PodDisruptionBudget"): ["spec.selector.matchLabels"],
}


def dig(obj, path):
    for k in path.split("."):
        if not isinstance(obj, dict) or k not in obj:
            return None
        obj = obj[k]
    return obj


def k8s_problems(objs):
    """What is wrong with a set of manifests: missing fields and objects that do not fit
    together. Empty when all is well."""
    bad = []
    by = {}
    for f, o in objs:
        key = (o.get("apiVersion"), o.get("kind"))
        if key not in REQUIRED:
            bad.append(f"{f}: unexpected {key}")
            continue
        if not dig(o, "metadata.name"):
            bad.append(f"{f}: {key[1]} without metadata.name")
        for p in REQUIRED[key]:
            if dig(o, p) in (None, [], {}):
                bad.append(f"{f}: {key[1]} without {p}")
        by.setdefault(key[1], {})[dig(o, "metadata.name")] = o
    if bad:
        return bad
    (ss,) = by["StatefulSet"].values()
    pod = ss["spec"]["template"]
    labels = pod["metadata"]["labels"]
    if ss["spec"]["selector"]["matchLabels"].items() - labels.items():
        bad.append("StatefulSet: selector does not match its pods' labels")
    spec = pod["spec"]
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    claims = {c["metadata"]["name"] for c in ss["spec"].get("volumeClaimTemplates", [])}
    ports = {}
    for c in spec["containers"]:
        for k in ("name", "image"):
            if not c.get(k):
                bad.append(f"StatefulSet: a container without {k}")
        ports.update({p["name"]: p["containerPort"] for p in c.get("ports", [])})
        for probe in ("readinessProbe", "livenessProbe"):
            if dig(c, f"{probe}.httpGet.port") not in ports:
                bad.append(f"StatefulSet: {probe} on a port the container does not name")
        if dig(c, "readinessProbe.httpGet.path") != "/ready":
            bad.append("StatefulSet: readinessProbe is not /ready")
        if dig(c, "livenessProbe.httpGet.path") != "/health":
            bad.append("StatefulSet: livenessProbe is not /health")
        for m in c.get("volumeMounts", []):
            if m["name"] not in volumes and m["name"] not in claims:
                bad.append(f"StatefulSet: mount of an undeclared volume {m['name']}")
        if not dig(c, "resources.requests"):
            bad.append("StatefulSet: no resource requests")
    for v in volumes.values():
        if "configMap" in v and v["configMap"]["name"] not in by.get("ConfigMap", {}):
            bad.append(f"StatefulSet: volume {v['name']} of a missing ConfigMap")
        if "secret" in v and v["secret"]["secretName"] not in by.get("Secret", {}):
            bad.append(f"StatefulSet: volume {v['name']} of a missing Secret")
    if not dig(spec, "securityContext.runAsNonRoot") or not dig(spec, "securityContext.fsGroup"):
        bad.append("StatefulSet: pods may run as root, or without fsGroup")
    headless = by["Service"].get(ss["spec"]["serviceName"])
    if not headless or headless["spec"].get("clusterIP") != "None":
        bad.append("StatefulSet: serviceName is not a headless Service")
    name, replicas = ss["metadata"]["name"], ss["spec"]["replicas"]
    pod_names = [f"{name}-{i}" for i in range(replicas)]
    pod_label = "statefulset.kubernetes.io/pod-name"  # set on each pod by the controller
    for sname, svc in by["Service"].items():
        extra = dict(svc["spec"]["selector"].items() - labels.items())
        if set(extra) - {pod_label} or extra.get(pod_label, pod_names[0]) not in pod_names:
            bad.append(f"Service {sname}: selector does not match the pods")
        for p in svc["spec"]["ports"]:
            if p.get("targetPort", p["port"]) not in ports and p.get("targetPort") not in ports.values():
                bad.append(f"Service {sname}: targetPort {p.get('targetPort')} is no container port")
    if not any(s["spec"].get("type") == "LoadBalancer" for s in by["Service"].values()):
        bad.append("no Service of type LoadBalancer")
    for pname, pdb in by["PodDisruptionBudget"].items():
        if pdb["spec"]["selector"]["matchLabels"].items() - labels.items():
            bad.append(f"PodDisruptionBudget {pname}: selector does not match the pods")
    # The entry point's peers: every pod, each by a Service of that pod alone, on the
    # cluster port.
    env = {e["name"]: e.get("value", "") for c in spec["containers"] for e in c.get("env", [])}
    peers = dict(p.split("=", 1) for p in env.get("STARLING_PEERS", "").split())
    if sorted(peers) != pod_names:
        bad.append(f"StatefulSet: STARLING_PEERS does not name the pods {pod_names}")
    for pod, hostport in peers.items():
        host, port = hostport.rsplit(":", 1)
        svc = by["Service"].get(host)
        if (
            not svc
            or svc["spec"]["selector"].get(pod_label) != pod
            or not svc["spec"].get("publishNotReadyAddresses")
            or {int(port)} != {p["port"] for p in svc["spec"]["ports"]}
            or ports.get("cluster") != int(port)
        ):
            bad.append(f"StatefulSet: peer {pod} is not reached by a Service of its own: {hostport}")
    # The config: its node's part from the entry point, its files in mounted Secrets.
    conf = next(iter(by["ConfigMap"].values()))["data"].get("starling.conf", "")
    cluster = re.search(r"^cluster = \{\n(.*?)^\};", conf, re.S | re.M)
    if not cluster or not re.search(r'^\s*@include "node.conf"$', cluster.group(1), re.M):
        bad.append('ConfigMap: no @include "node.conf" in the cluster group')
    if conf_get(conf, "cluster.node") or conf_get(conf, "cluster.nodes"):
        bad.append("ConfigMap: names a node, which the entry point does")
    mounts = {m["mountPath"]: volumes.get(m["name"], {}) for c in spec["containers"]
              for m in c.get("volumeMounts", [])}
    db = conf_get(conf, "storage.path") or ""
    for f in [conf_get(conf, k) for k in ("storage.password_file", "c2s.certificate", "c2s.key")] + [
        db + ".secret", db + ".dialback"
    ]:
        secret = dig(mounts.get(os.path.dirname(f or "")), "secret.secretName")
        if not secret or os.path.basename(f) not in secret_keys(by, secret):
            bad.append(f"ConfigMap: {f} is in no mounted Secret")
    return bad


def secret_keys(by, name):
    s = by.get("Secret", {}).get(name) or {}
    return set(s.get("stringData", {})) | set(s.get("data", {}))


def test_k8s_manifests_parse_and_fit_together():
    objs = k8s_objects()
    assert {o["kind"] for _, o in objs} == {
        "ConfigMap", "Secret", "Service", "StatefulSet", "PodDisruptionBudget"
    }
    assert k8s_problems(objs) == []
    # The kustomization names every manifest but the example Secrets.
    kust = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert sorted(kust["resources"]) == sorted(
        f.name for f in K8S.glob("*.yaml") if f.name not in ("kustomization.yaml", "secret.example.yaml")
    )


@pytest.mark.parametrize(
    "break_it",
    [
        lambda by: by["StatefulSet"]["spec"]["template"]["metadata"]["labels"].update(
            {"app.kubernetes.io/name": "other"}
        ),
        lambda by: by["StatefulSet"]["spec"].update(replicas=4),
        lambda by: by["StatefulSet"]["spec"]["template"]["spec"]["containers"][0][
            "readinessProbe"
        ]["httpGet"].update(port="http"),
        lambda by: by["Service"]["spec"].pop("selector"),
        lambda by: by["Secret"]["stringData"].pop("password"),
        lambda by: by["StatefulSet"]["spec"]["template"]["spec"]["containers"][0]["env"][1].update(
            value="starling-0=starling-0-link:5270 starling-1=starling-1-link:5270"
        ),
        lambda by: by["ConfigMap"]["data"].update(
            {"starling.conf": by["ConfigMap"]["data"]["starling.conf"].replace("@include", "#")}
        ),
    ],
    ids=["pod labels", "replicas", "probe port", "no selector", "secret key", "peers", "include"],
)
def test_k8s_check_fails_on_broken_manifests(break_it):
    objs = k8s_objects()
    by = {}
    for _, o in objs:
        by.setdefault(o["kind"], o)  # the first of each kind
    break_it(by)
    assert k8s_problems(objs) != []


@pytest.mark.skipif(not shutil.which("kubectl"), reason="kubectl is not installed")
def test_k8s_kustomization_builds():
    r = run(["kubectl", "kustomize", K8S])
    assert r.returncode == 0, r.stderr
    assert len([d for d in yaml.safe_load_all(r.stdout) if d]) == 8


def entrypoint_env(tmp_path, conf_text, **more):
    (tmp_path / "etc").mkdir(exist_ok=True)
    (tmp_path / "etc" / "starling.conf").write_text(conf_text)
    return {
        **os.environ,
        "STARLING_BIN": str(BIN),
        "STARLING_CONFIG": str(tmp_path / "etc" / "starling.conf"),
        "STARLING_RUN": str(tmp_path / "run"),
        **more,
    }


def test_k8s_config_checks_through_the_entrypoint(tmp_path):
    """The ConfigMap's config, completed by the container's entry point as in the pod
    starling-1 with the StatefulSet's peers (their Services' names looked up: here
    names this machine resolves), passes starling --check."""
    objs = k8s_objects()
    cm = next(o for _, o in objs if o["kind"] == "ConfigMap")
    ss = next(o for _, o in objs if o["kind"] == "StatefulSet")
    env = {e["name"]: e.get("value") for e in ss["spec"]["template"]["spec"]["containers"][0]["env"]}
    peers = env["STARLING_PEERS"].split()
    local = " ".join(re.sub(r"=[^:]*:", "=localhost:", p, count=1) for p in peers[:2])
    local += " " + re.sub(r"=[^:]*:", "=127.0.0.3:", peers[2], count=1)
    env = entrypoint_env(tmp_path, cm["data"]["starling.conf"], STARLING_NODE="starling-1",
                         STARLING_PEERS=local)
    r = run([DEPLOY / "container" / "entrypoint.sh", "--check"], env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"{tmp_path}/run/starling.conf: ok"
    assert (tmp_path / "run" / "node.conf").read_text() == (
        'node = "starling-1";\nnodes = [ "starling-0=127.0.0.1:5270", "starling-2=127.0.0.3:5270" ];\n'
    )
    # Broken, it fails: a directive it does not know.
    (tmp_path / "etc" / "starling.conf").write_text(
        cm["data"]["starling.conf"].replace("cluster = {", "cluster = {\n    bogus = 1;")
    )
    assert run([DEPLOY / "container" / "entrypoint.sh", "--check"], env=env).returncode == 2


def test_entrypoint_gives_up_on_a_peer_it_cannot_resolve(tmp_path):
    env = entrypoint_env(tmp_path, 'cluster = {\n    @include "node.conf"\n};\n',
                         STARLING_NODE="a", STARLING_PEERS="a=x:1 b=nothing.invalid:5270",
                         STARLING_PEERS_WAIT="0")
    r = run([DEPLOY / "container" / "entrypoint.sh", "--check"], env=env)
    assert r.returncode == 1
    assert "cannot resolve nothing.invalid" in r.stderr


def test_entrypoint_leaves_a_config_without_node_conf_alone(tmp_path):
    env = entrypoint_env(tmp_path, 'domain = "example.org";\n')
    r = run([DEPLOY / "container" / "entrypoint.sh", "--check"], env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"{tmp_path}/etc/starling.conf: ok"
    assert not (tmp_path / "run").exists()


# ---- the container file ------------------------------------------------------------------

INSTRUCTIONS = {
    "FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME",
    "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL",
}


def containerfile_instructions(text):
    """[(INSTRUCTION, arguments)], continuation lines joined, comments dropped; raises
    ValueError on what Docker's parser would refuse."""
    out, cur = [], ""
    for n, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if not cur and (not s or s.startswith("#")):
            continue
        if cur and s.startswith("#"):
            continue  # a comment inside a continued instruction
        cur += " " + s.rstrip("\\").strip()
        if s.endswith("\\"):
            continue
        word, _, args = cur.strip().partition(" ")
        if word.upper() not in INSTRUCTIONS:
            raise ValueError(f"line {n}: unknown instruction {word}")
        out.append((word.upper(), args.strip()))
        cur = ""
    if cur:
        raise ValueError("the file ends inside a continued instruction")
    return out


def apt_packages(run_args):
    m = re.search(r"apt-get install (.*?)(?:&&|$)", run_args)
    return {w for w in m.group(1).split() if not w.startswith("-")} if m else set()


_owners = {}


def packages_of(paths):
    """path -> the Debian package that installed it (as dpkg -S names the path, or else
    the file it links to). One dpkg -S for all, remembered: each takes a second."""
    want = {q for p in paths for q in (p, os.path.realpath(p))} - _owners.keys()
    if want:
        r = run(["dpkg", "-S", *sorted(want)])
        for line in r.stdout.splitlines():
            pkg, _, path = line.partition(": ")
            _owners[path] = pkg.split(",")[0].split(":")[0].strip()
        _owners.update({q: None for q in want if q not in _owners})
    out = {}
    for p in paths:
        pkg = _owners[p] or _owners[os.path.realpath(p)]
        if pkg:
            out[p] = pkg
    return out


def sources():
    """The C files of the programs (what `make install` builds)."""
    return [f for d in ("common", "router", "c2s", "s2s", "shm") for f in (REPO / d).rglob("*.[ch]")
            if "fuzz" not in f.parts]


def containerfile_problems(text):
    try:
        ins = containerfile_instructions(text)
    except ValueError as e:
        return [str(e)]
    bad = []
    stages = [a.split() for i, a in ins if i == "FROM"]
    if not ins or ins[0][0] not in ("FROM", "ARG"):
        bad.append("the first instruction is not FROM")
    if [s[0] for s in stages] != ["debian:12", "debian:12-slim"]:
        bad.append(f"stages are not built from Debian 12: {stages}")
    names = {s[2] for s in stages if len(s) == 3 and s[1].upper() == "AS"}
    runs = [[]]
    for i, a in ins:
        if i == "FROM":
            runs.append([])
        elif i == "RUN":
            runs[-1].append(a)
        elif i == "COPY":
            words = a.split()
            frm = [w for w in words if w.startswith("--from=")]
            srcs = [w for w in words[:-1] if not w.startswith("--")]
            if frm and frm[0][7:] not in names:
                bad.append(f"COPY from an unknown stage: {a}")
            if not frm:
                bad += [f"COPY of a missing file {s}" for s in srcs if s != "." and not (REPO / s).exists()]
    build_pkgs = set().union(*map(apt_packages, runs[1]))
    run_pkgs = set().union(*map(apt_packages, runs[2])) if len(runs) > 2 else set()
    # The build stage has the -dev package of every library the Makefile links: -lX's
    # libX.so, or the -dev package beside the runtime one of an -l:FILE.
    mk = (REPO / "Makefile").read_text()
    ldlibs = " ".join(re.findall(r"^(?:LDLIBS|JEMALLOC)\s*:=((?:.*\\\n)*.*)", mk, re.M))
    libs = {}
    for lib in re.findall(r"-l(:?[\w.+-]+)", ldlibs):
        name = lib[1:] if lib.startswith(":") else f"lib{lib}.so"
        for d in ("/usr/lib/x86_64-linux-gnu/android", "/usr/lib/x86_64-linux-gnu"):
            if (Path(d) / name).exists():
                libs[str(Path(d) / name)] = lib
                break
    for path, pkg in packages_of(libs).items():
        if pkg not in build_pkgs and pkg + "-dev" not in build_pkgs and pkg != "libc6-dev":
            bad.append(f"the build stage lacks {pkg} (for -l{libs[path]})")
    # ... and of every system header the programs include (libpq's, for one, is only
    # included: the store loads libpq itself).
    cppflags = re.search(r"^CPPFLAGS\s*:=(.*)", mk, re.M).group(1)
    dirs = re.findall(r"(?:-I|-isystem\s+)(/\S+)", cppflags) + [
        "/usr/include", "/usr/include/x86_64-linux-gnu"
    ]
    headers = {}
    for src in sources():
        for h in re.findall(r"^#include <([^>]+)>", src.read_text(), re.M):
            found = next((f"{d}/{h}" for d in dirs if os.path.isfile(f"{d}/{h}")), None)
            if found:
                headers.setdefault(found, src.relative_to(REPO))
    for path, pkg in packages_of(headers).items():
        if pkg not in build_pkgs and pkg not in ("libc6-dev", "linux-libc-dev"):
            bad.append(f"the build stage lacks {pkg} ({headers[path]} includes {path})")
    # The runtime stage has the package of every library the programs need (their
    # DT_NEEDED entries; what those need in turn their packages depend on).
    base = {"libc6", "libgcc-s1", "libstdc++6", "zlib1g"}  # in debian:12-slim
    loaded = {}
    for prog in ("starling", "starling-c2s", "starling-router", "starling-s2s", "starlingctl"):
        where = dict(re.findall(r"^\s*(\S+) => (/\S+)", run(["ldd", RELEASE / prog]).stdout, re.M))
        for name in re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]",
                               run(["readelf", "-d", RELEASE / prog]).stdout):
            if name in where:
                loaded.setdefault(where[name], prog)
    # ... and of every library they load themselves (dlopen of a "libX.so.N").
    for src in sources():
        for name in re.findall(r'"(lib[\w+-]+\.so\.\d+)"', src.read_text()):
            path = f"/usr/lib/x86_64-linux-gnu/{name}"
            if os.path.exists(path):
                loaded.setdefault(path, f"{src.relative_to(REPO)} (dlopen)")
    for lib, pkg in packages_of(loaded).items():
        if pkg not in run_pkgs | base:
            bad.append(f"the runtime stage lacks {pkg} ({loaded[lib]} loads {lib})")
    kinds = {i for i, _ in ins}
    for need in ("USER", "EXPOSE", "HEALTHCHECK", "ENTRYPOINT"):
        if need not in kinds:
            bad.append(f"no {need}")
    user = [a for i, a in ins if i == "USER"]
    if user and user[-1] in ("root", "0"):
        bad.append("runs as root")
    hc = next((a for i, a in ins if i == "HEALTHCHECK"), "")
    if "starling-healthcheck" not in hc:
        bad.append("HEALTHCHECK does not run starling-healthcheck (GET /health)")
    return sorted(set(bad))


def test_containerfile_parses_and_fits_the_build():
    assert containerfile_problems((DEPLOY / "container" / "Containerfile").read_text()) == []


@pytest.mark.parametrize(
    "old,new",
    [
        ("FROM debian:12 AS build", "FROM debian:11 AS build"),
        (" liburing2 ", " "),  # a library the programs load, left out of the runtime
        (" libpq5 ", " "),  # the one the store loads itself
        (" libpq-dev ", " "),  # a -dev package the Makefile links
        ("COPY deploy/container/entrypoint.sh", "COPY deploy/container/entry.sh"),
        ("COPY --from=build", "COPY --from=builder"),
        ("USER starling", "USER root"),
        ("WORKDIR /src", "WORKDIRR /src"),
        ('starling-entrypoint"]\n', 'starling-entrypoint"] \\\n'),  # ends continued
    ],
)
def test_containerfile_check_fails_on_a_broken_file(old, new):
    text = (DEPLOY / "container" / "Containerfile").read_text()
    assert old in text
    assert containerfile_problems(text.replace(old, new, 1)) != []


# ---- make cluster, for real --------------------------------------------------------------

# Beside a `make cluster` or `make run` of the developer's: nodes on 127.0.9.11 to .13,
# HAProxy on 127.0.9.10, everything under the test's folder.
CLUSTER_NET = "127.0.9.1"
CLUSTER_FRONT = "127.0.9.10"


def login_raw(host, cert, user, password, direct_tls=False, source=None):
    from rawxmpp import RawClient
    from types import SimpleNamespace

    srv = SimpleNamespace(domain="localhost", cert=cert, port=5222, tls_port=5223, host=host)
    c = RawClient(srv, direct_tls=direct_tls, source=source)
    try:
        c.login(user, password, "deploy")
    finally:
        c.close()


def test_make_cluster_serves_through_haproxy_and_stops_on_ctrl_c(tmp_path):
    """deploy/run-cluster.sh as `make cluster` runs it: PostgreSQL, three nodes and
    HAProxy come up; the demo accounts log in through HAProxy (STARTTLS and Direct TLS,
    the PROXY protocol to the nodes); an account starlingctl makes against node1's
    config logs in on every node; Ctrl-C (SIGINT to the group, as a terminal sends it)
    stops everything it started."""
    import signal
    import time

    from conftest import pid_alive, proc_exe

    env = {
        **os.environ,
        "STARLING_CLUSTER_DIR": str(tmp_path),
        "STARLING_CLUSTER_NET": CLUSTER_NET,
        "STARLING_CLUSTER_FRONT": CLUSTER_FRONT,
    }
    log = open(tmp_path / "run.out", "w")
    p = subprocess.Popen(
        [DEPLOY / "run-cluster.sh", BIN.parent],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
        # As from a terminal: SIGINT not ignored, whatever our own parent did.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    cert = str(tmp_path / "localhost.crt")
    pids = []
    try:
        deadline = time.monotonic() + 60
        while True:
            assert p.poll() is None, (tmp_path / "run.out").read_text()
            try:
                login_raw(CLUSTER_FRONT, cert, "alice", "alice")
                break
            except (OSError, AssertionError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        pids = [int((tmp_path / f"node{n}.pid").read_text()) for n in (1, 2, 3)]
        assert all(pid_alive(x) and proc_exe(x) == "starling" for x in pids)
        # Several logins, both ports: leastconn spreads them over the nodes.
        for i in range(6):
            login_raw(CLUSTER_FRONT, cert, "bob", "bob", direct_tls=bool(i % 2))
        r = run([BIN / "starlingctl", "--config", tmp_path / "node1.conf", "adduser",
                 "carol@localhost", "secret"])
        assert r.returncode == 0, r.stderr
        for n in (1, 2, 3):  # each node directly, from 127.0.0.1 (no PROXY header)
            login_raw(f"{CLUSTER_NET}{n}", cert, "carol", "secret")
        pids.append(int((tmp_path / "pg" / "postmaster.pid").read_text().split()[0]))
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGINT)
        rc = p.wait(60)
    assert rc == 0, (tmp_path / "run.out").read_text()
    assert not any(pid_alive(x) for x in pids)
    assert not list(tmp_path.glob("node*.pid"))
