"""kubelet flag layouts and the `--pod-infra-container-image` decision (case 10)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fabfile.runtimes.findings import ConfigParseError, KubeletConfigError, Severity
from fabfile.runtimes.flags import flag_values, remove_flag, set_flag
from fabfile.runtimes.kubelet import (
    FLAG,
    edit_env_flag,
    locate_kubelet_flags,
    plan_kubelet_flag,
)
from fabfile.runtimes.systemd import parse_service
from fabfile.runtimes.versions import FlagAction, Version

PAUSE = "127.0.2.1:5000/k8s/pause:3.10"

KUBEADM_UNIT = """\
# /lib/systemd/system/kubelet.service
[Unit]
Description=kubelet: The Kubernetes Node Agent

[Service]
ExecStart=/usr/bin/kubelet
Restart=always

# /etc/systemd/system/kubelet.service.d/10-kubeadm.conf
# Note: This dropin only works with kubeadm and kubelet v1.11+
[Service]
Environment="KUBELET_KUBECONFIG_ARGS=--kubeconfig=/etc/kubernetes/kubelet.conf"
Environment="KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml"
EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env
EnvironmentFile=-/etc/default/kubelet
ExecStart=
ExecStart=/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS \\
  $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS
"""

SYSCONFIG_UNIT = """\
# /usr/lib/systemd/system/kubelet.service
[Service]
EnvironmentFile=-/etc/kubernetes/config
EnvironmentFile=-/etc/kubernetes/kubelet
ExecStart=/usr/bin/kubelet \\
    $KUBE_LOGTOSTDERR \\
    $KUBELET_ARGS
"""

INLINE_UNIT = """\
# /etc/systemd/system/kubelet.service
[Service]
ExecStart=/usr/local/bin/kubelet \\
  --container-runtime-endpoint=unix:///run/containerd/containerd.sock \\
  --pod-infra-container-image=registry.k8s.io/pause:3.9 \\
  --v=2
"""

# Case 10's kubeadm-flags.env.
CASE10 = (
    'KUBELET_KUBEADM_ARGS="--container-runtime-endpoint=unix:///run/containerd/containerd.sock '
    '--pod-infra-container-image=registry.k8s.io/pause:3.9"\n'
)
KUBEADM_ENV = "/var/lib/kubelet/kubeadm-flags.env"


def test_parse_service_reads_last_exec_start_and_env_files():
    unit = parse_service(KUBEADM_UNIT, "kubelet")
    assert unit.exec_start_file == "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf"
    assert [(r.path, r.optional) for r in unit.environment_files] == [
        (KUBEADM_ENV, True),
        ("/etc/default/kubelet", True),
    ]
    assert unit.variables_used == [
        "KUBELET_KUBECONFIG_ARGS",
        "KUBELET_CONFIG_ARGS",
        "KUBELET_KUBEADM_ARGS",
        "KUBELET_EXTRA_ARGS",
    ]
    assert unit.environment["KUBELET_CONFIG_ARGS"] == "--config=/var/lib/kubelet/config.yaml"


LAYOUT_CASES = [
    (
        "kubeadm, flag in kubeadm-flags.env",
        KUBEADM_UNIT,
        {KUBEADM_ENV: CASE10, "/etc/default/kubelet": None},
        "kubeadm",
        ["registry.k8s.io/pause:3.9"],
        (KUBEADM_ENV, "KUBELET_KUBEADM_ARGS"),
    ),
    (
        "kubeadm, flag in /etc/default/kubelet too",
        KUBEADM_UNIT,
        {
            KUBEADM_ENV: 'KUBELET_KUBEADM_ARGS="--v=2"\n',
            "/etc/default/kubelet": "KUBELET_EXTRA_ARGS=--pod-infra-container-image old:1\n",
        },
        "kubeadm",
        ["old:1"],
        (KUBEADM_ENV, "KUBELET_KUBEADM_ARGS"),
    ),
    (
        "sysconfig style with KUBELET_ARGS",
        SYSCONFIG_UNIT,
        {
            "/etc/kubernetes/config": 'KUBE_LOGTOSTDERR="--logtostderr=true"\n',
            "/etc/kubernetes/kubelet": 'KUBELET_ARGS="--v=2"\n',
        },
        "sysconfig",
        [],
        ("/etc/kubernetes/kubelet", "KUBELET_ARGS"),
    ),
    (
        "flags inline in ExecStart",
        INLINE_UNIT,
        {},
        "inline",
        ["registry.k8s.io/pause:3.9"],
        ("/etc/systemd/system/kubelet.service", None),
    ),
]


@pytest.mark.parametrize(
    ("unit", "env", "name", "values", "add_to"),
    [c[1:] for c in LAYOUT_CASES],
    ids=[c[0] for c in LAYOUT_CASES],
)
def test_locate_kubelet_flags(unit, env, name, values, add_to):
    layout = locate_kubelet_flags(unit, env)
    assert layout.name == name
    assert layout.flag_values == values
    assert layout.add_to == add_to


UNKNOWN_CASES = [
    ("no unit", "", {}, ConfigParseError, "no unit file"),
    (
        "wrapper script",
        "# /etc/systemd/system/kubelet.service\n[Service]\nExecStart=/opt/bin/start-kubelet.sh\n",
        {},
        KubeletConfigError,
        "not the kubelet binary",
    ),
    (
        "unknown env file",
        "# /etc/systemd/system/kubelet.service\n[Service]\nEnvironmentFile=/opt/k/flags\n"
        "ExecStart=/usr/bin/kubelet $FLAGS\n",
        {"/opt/k/flags": "FLAGS=--v=2\n"},
        KubeletConfigError,
        "not a known layout",
    ),
    (
        "required env file missing",
        SYSCONFIG_UNIT.replace("-/etc/kubernetes/kubelet", "/etc/kubernetes/kubelet"),
        {"/etc/kubernetes/config": "", "/etc/kubernetes/kubelet": None},
        KubeletConfigError,
        "requires this file",
    ),
]


@pytest.mark.parametrize(
    ("unit", "env", "error", "message"),
    [c[1:] for c in UNKNOWN_CASES],
    ids=[c[0] for c in UNKNOWN_CASES],
)
def test_unknown_layout_says_what_was_found(unit, env, error, message):
    with pytest.raises(error, match=message):
        locate_kubelet_flags(unit, env)


ENV_EDIT_CASES = [
    (
        "set, = form",
        CASE10,
        "KUBELET_KUBEADM_ARGS",
        PAUSE,
        CASE10.replace("registry.k8s.io/pause:3.9", PAUSE),
    ),
    (
        "set, space form kept",
        "# extra flags\nKUBELET_EXTRA_ARGS='--v=2 --pod-infra-container-image  old:1 --x=y'\n",
        "KUBELET_EXTRA_ARGS",
        PAUSE,
        f"# extra flags\nKUBELET_EXTRA_ARGS='--v=2 --pod-infra-container-image  {PAUSE} --x=y'\n",
    ),
    (
        "remove, = form",
        CASE10,
        "KUBELET_KUBEADM_ARGS",
        None,
        'KUBELET_KUBEADM_ARGS="--container-runtime-endpoint=unix:///run/containerd/containerd.sock"\n',
    ),
    (
        "remove, first flag in value",
        'KUBELET_EXTRA_ARGS="--pod-infra-container-image old:1 --v=2"  # keep\n',
        "KUBELET_EXTRA_ARGS",
        None,
        'KUBELET_EXTRA_ARGS="--v=2"  # keep\n',
    ),
    (
        "add to empty value",
        "KUBELET_EXTRA_ARGS=\n",
        "KUBELET_EXTRA_ARGS",
        PAUSE,
        f"KUBELET_EXTRA_ARGS={FLAG}={PAUSE}\n",
    ),
    (
        "add to unquoted value quotes it",
        "KUBELET_EXTRA_ARGS=--v=2\n",
        "KUBELET_EXTRA_ARGS",
        PAUSE,
        f'KUBELET_EXTRA_ARGS="--v=2 {FLAG}={PAUSE}"\n',
    ),
    (
        "add assignment",
        "# nothing yet\n",
        "KUBELET_ARGS",
        PAUSE,
        f'# nothing yet\nKUBELET_ARGS="{FLAG}={PAUSE}"\n',
    ),
    (
        "create missing file",
        None,
        "KUBELET_EXTRA_ARGS",
        PAUSE,
        f'KUBELET_EXTRA_ARGS="{FLAG}={PAUSE}"\n',
    ),
    (
        "remove when absent",
        "KUBELET_EXTRA_ARGS=--v=2\n",
        "KUBELET_EXTRA_ARGS",
        None,
        "KUBELET_EXTRA_ARGS=--v=2\n",
    ),
    (
        "similar flag untouched",
        'KUBELET_ARGS="--pod-infra-container-image-x=1"\n',
        "KUBELET_ARGS",
        None,
        'KUBELET_ARGS="--pod-infra-container-image-x=1"\n',
    ),
]


@pytest.mark.parametrize(
    ("text", "variable", "value", "expected"),
    [c[1:] for c in ENV_EDIT_CASES],
    ids=[c[0] for c in ENV_EDIT_CASES],
)
def test_edit_env_flag(text, variable, value, expected):
    assert edit_env_flag(text, "/etc/default/kubelet", variable, value) == expected


def test_env_file_with_unclosed_quote_names_the_line():
    with pytest.raises(ConfigParseError, match=r"/etc/default/kubelet:2: KUBELET_EXTRA_ARGS"):
        edit_env_flag(
            '# x\nKUBELET_EXTRA_ARGS="--v=2\n', "/etc/default/kubelet", "KUBELET_EXTRA_ARGS", PAUSE
        )


_WORDS = st.sampled_from(["--v=2", "--a b", "-x", "--pod-infra-container-image=o:1", f"{FLAG} o:2"])


@given(st.lists(_WORDS, max_size=5), st.sampled_from([PAUSE, "p:1"]))
def test_setting_twice_equals_once(words, value):
    text = " ".join(words)
    once = set_flag(text, FLAG, value)
    assert set_flag(once, FLAG, value) == once
    assert all(v == value for v in flag_values(once, FLAG))


@given(st.lists(_WORDS, max_size=5))
def test_removing_leaves_no_flag_and_keeps_others(words):
    text = " ".join(words)
    removed = remove_flag(text, FLAG)
    assert flag_values(removed, FLAG) == []
    assert remove_flag(removed, FLAG) == removed
    others = [w for w in words if not w.startswith(FLAG)]
    assert removed.split() == " ".join(others).split()


def _plan(version, unit, env, runtime="containerd"):
    return plan_kubelet_flag(Version(*version), runtime, PAUSE, unit, env)


def test_case10_kubelet_128_sets_flag_to_runtime_sandbox():
    plan = _plan((1, 28, 15), KUBEADM_UNIT, {KUBEADM_ENV: CASE10, "/etc/default/kubelet": None})
    assert plan.action is FlagAction.SET
    assert plan.files == {KUBEADM_ENV: CASE10.replace("registry.k8s.io/pause:3.9", PAUSE)}
    assert plan.restart_needed and not plan.daemon_reload_needed
    assert "garbage" in plan.changes[0] or "GC" in plan.changes[0]


def test_case10_kubelet_135_removes_flag_everywhere():
    env = {
        KUBEADM_ENV: CASE10,
        "/etc/default/kubelet": 'KUBELET_EXTRA_ARGS="--pod-infra-container-image=x:1 --v=2"\n',
    }
    plan = _plan((1, 35, 0), KUBEADM_UNIT, env)
    assert plan.action is FlagAction.REMOVE
    assert set(plan.files) == {KUBEADM_ENV, "/etc/default/kubelet"}
    assert all(FLAG not in text for text in plan.files.values())
    assert plan.files["/etc/default/kubelet"] == 'KUBELET_EXTRA_ARGS="--v=2"\n'


def test_kubelet_130_leaves_flag_and_warns():
    plan = _plan((1, 30, 2), KUBEADM_UNIT, {KUBEADM_ENV: CASE10, "/etc/default/kubelet": None})
    assert plan.action is FlagAction.LEAVE
    assert plan.files == {}
    assert [f.severity for f in plan.findings] == [Severity.WARNING]
    assert "1.35" in plan.findings[0].message


def test_docker_123_adds_missing_flag_to_kubeadm_flags():
    env = {
        KUBEADM_ENV: 'KUBELET_KUBEADM_ARGS="--network-plugin=cni"\n',
        "/etc/default/kubelet": None,
    }
    plan = _plan((1, 23, 17), KUBEADM_UNIT, env, runtime="docker")
    assert plan.files == {
        KUBEADM_ENV: f'KUBELET_KUBEADM_ARGS="--network-plugin=cni {FLAG}={PAUSE}"\n'
    }
    assert "dockershim" in plan.changes[0]


def test_sysconfig_flag_added_to_kubelet_args():
    env = {"/etc/kubernetes/config": "", "/etc/kubernetes/kubelet": 'KUBELET_ARGS="--v=2"\n'}
    plan = _plan((1, 26, 0), SYSCONFIG_UNIT, env)
    assert plan.files == {"/etc/kubernetes/kubelet": f'KUBELET_ARGS="--v=2 {FLAG}={PAUSE}"\n'}


def test_inline_flag_removed_from_exec_start():
    plan = _plan((1, 35, 1), INLINE_UNIT, {})
    assert plan.files == {
        "/etc/systemd/system/kubelet.service": INLINE_UNIT.split("\n", 1)[1].replace(
            "  --pod-infra-container-image=registry.k8s.io/pause:3.9 \\\n", ""
        )
    }
    assert plan.daemon_reload_needed


def test_second_run_changes_nothing():
    env = {KUBEADM_ENV: CASE10, "/etc/default/kubelet": None}
    first = _plan((1, 28, 15), KUBEADM_UNIT, env)
    second = _plan((1, 28, 15), KUBEADM_UNIT, {**env, **first.files})
    assert second.files == {} and not second.restart_needed
    removed = _plan((1, 35, 0), KUBEADM_UNIT, env)
    again = _plan((1, 35, 0), KUBEADM_UNIT, {**env, **removed.files})
    assert again.files == {}
