"""containerd config.toml: schema detection, editing per schema, and the field cases.

Where the real containerd binary is installed (1.6.x here), the edited files are also read back
with `containerd --config FILE config dump`, which loads the file the way the daemon does
without starting it, to confirm the effective sandbox image and config_path.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from fabfile.runtimes.containerd import (
    CERTS_D,
    detect_schema,
    inspect_config,
    minimal_config,
    read_settings,
    update_config,
)
from fabfile.runtimes.findings import ConfigParseError, ContainerdConfigError, Severity
from fabfile.runtimes.versions import Version, parse_containerd_version

V16 = Version(1, 6, 20)
V20 = Version(2, 0, 5)
V23 = Version(2, 3, 1)
V24 = Version(2, 4, 0)
PAUSE = "127.0.0.1:5000/k8s/pause:3.10"

CASE7 = """\
# node1:/etc/containerd/config.toml (containerd 1.x, version 2) — left at package default
version = 2
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.6"
"""

CASE8 = """\
version = 3
[plugins."io.containerd.grpc.v1.cri"]          # old table name: ignored under version 3
  sandbox_image = "registry.example.test:5000/k8s/pause:3.10"
"""

DEFAULT_16 = """\
disabled_plugins = []
imports = []
oom_score = 0
root = "/var/lib/containerd"
version = 2

[plugins]

  [plugins."io.containerd.grpc.v1.cri"]
    # what the kubelet starts every pod with
    sandbox_image = "registry.k8s.io/pause:3.6"  # package default
    max_container_log_line_size = 16384

    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"

    [plugins."io.containerd.grpc.v1.cri".registry]
      config_path = ""

      [plugins."io.containerd.grpc.v1.cri".registry.auths]

      [plugins."io.containerd.grpc.v1.cri".registry.configs]

      [plugins."io.containerd.grpc.v1.cri".registry.mirrors]
"""

SCHEMA_CASES = [
    (None, None),
    ("", None),
    ("# only a comment\n", None),
    ('[plugins.cri]\n  sandbox_image = "x"\n', 1),
    ("version = 1\n", 1),
    (CASE7, 2),
    (CASE8, 3),
    ("version = 4\n", 4),
]


@pytest.mark.parametrize(("text", "schema"), SCHEMA_CASES)
def test_detect_schema(text, schema):
    assert detect_schema(text) == schema


@pytest.mark.parametrize("text", ["version = 7\n", 'version = "2"\n'])
def test_unknown_schema_is_refused(text):
    with pytest.raises(ContainerdConfigError, match="version"):
        detect_schema(text)


def test_syntax_error_names_file_and_line():
    with pytest.raises(ConfigParseError, match=r"/etc/containerd/config.toml:2:"):
        update_config('version = 2\nroot = "/x\n', V16, PAUSE)


# (name, containerd, input text, expected sandbox, expected config_path, expected output text)
EDIT_CASES = [
    (
        "case 7: v2 package default gets the private pause and config_path",
        V16,
        CASE7,
        PAUSE,
        CERTS_D,
        CASE7.replace("registry.k8s.io/pause:3.6", PAUSE)
        + f'\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "{CERTS_D}"\n',
    ),
    (
        "case 8: v3 file with the old table gets the v3 tables",
        V20,
        CASE8,
        PAUSE,
        CERTS_D,
        CASE8
        + f"\n[plugins.'io.containerd.cri.v1.images'.pinned_images]\n  sandbox = \"{PAUSE}\"\n"
        + f"\n[plugins.'io.containerd.cri.v1.images'.registry]\n  config_path = \"{CERTS_D}\"\n",
    ),
    (
        "missing file on 1.6 becomes a minimal v2 file",
        V16,
        None,
        PAUSE,
        CERTS_D,
        minimal_config(V16, PAUSE, CERTS_D),
    ),
    (
        "missing file on 2.3 becomes a minimal v4 file",
        V23,
        None,
        PAUSE,
        CERTS_D,
        "version = 4\n\n[plugins.'io.containerd.cri.v1.images'.pinned_images]\n"
        f'  sandbox = "{PAUSE}"\n\n'
        f"[plugins.'io.containerd.cri.v1.images'.registry]\n  config_path = \"{CERTS_D}\"\n",
    ),
    (
        "v1 file (no header) on 1.6 is edited in the plugins.cri tables",
        V16,
        '[plugins.cri]\n  sandbox_image = "k8s.gcr.io/pause:3.6"\n',
        PAUSE,
        CERTS_D,
        f'[plugins.cri]\n  sandbox_image = "{PAUSE}"\n\n'
        f'[plugins.cri.registry]\n  config_path = "{CERTS_D}"\n',
    ),
]


@pytest.mark.parametrize(
    ("containerd", "text", "sandbox", "config_path", "expected"),
    [case[1:] for case in EDIT_CASES],
    ids=[case[0] for case in EDIT_CASES],
)
def test_update_config(containerd, text, sandbox, config_path, expected):
    edit = update_config(text, containerd, sandbox, config_path)
    assert edit.text == expected
    assert edit.after.sandbox_image == sandbox
    assert edit.after.config_path == config_path
    assert edit.changed
    again = update_config(edit.text, containerd, sandbox, config_path)
    assert again.text == edit.text
    assert not again.changed


def test_package_default_keeps_comments_and_order():
    edit = update_config(DEFAULT_16, V16, PAUSE, CERTS_D)
    expected = DEFAULT_16.replace("registry.k8s.io/pause:3.6", PAUSE).replace(
        'config_path = ""', f'config_path = "{CERTS_D}"'
    )
    assert edit.text == expected
    assert edit.before.sandbox_image == "registry.k8s.io/pause:3.6"
    assert edit.before.config_path == ""


def test_case8_warns_that_old_table_is_ignored():
    edit = update_config(CASE8, V20, PAUSE, CERTS_D)
    warnings = [f for f in edit.findings if f.severity is Severity.WARNING]
    assert any(
        'plugins."io.containerd.grpc.v1.cri".sandbox_image' in f.key
        and "ignores" in f.message
        and "written to the right table" in f.message
        for f in warnings
    )
    inspection = inspect_config(CASE8, V20)
    assert inspection.settings.sandbox_image is None
    assert inspection.effective_sandbox_image == "pause:3.10"


def test_added_key_uses_the_tables_indentation():
    text = 'version = 2\n[plugins."io.containerd.grpc.v1.cri"]\n  max = 1\n'
    edit = update_config(text, V16, PAUSE, None)
    assert f'  sandbox_image = "{PAUSE}"\n' in edit.text


MIRRORS = (
    DEFAULT_16 + '        [plugins."io.containerd.grpc.v1.cri".registry.mirrors."docker.io"]\n'
)
MIRRORS += '          endpoint = ["https://mirror.example.test"]\n'

REFUSED_CASES = [
    ("mirrors together with config_path", V16, MIRRORS, PAUSE, "refuses to start with both"),
    ("mirrors on 2.4", V24, MIRRORS.replace("version = 2", "version = 2"), PAUSE, "no longer has"),
    ("tag and digest on 2.3", V23, None, PAUSE + "@sha256:" + "a" * 64, "tag and a digest"),
    ("v3 file on containerd 1.6", V16, CASE8, PAUSE, "reads config versions 1 and 2, not 3"),
    ("v1 file on containerd 2", V20, "[plugins.cri]\n", PAUSE, "containerd config migrate"),
    ("v4 file on containerd 2.0", V20, "version = 4\n", PAUSE, "not 4"),
]


@pytest.mark.parametrize(
    ("containerd", "text", "sandbox", "message"),
    [case[1:] for case in REFUSED_CASES],
    ids=[case[0] for case in REFUSED_CASES],
)
def test_refused_edits_name_file_and_key(containerd, text, sandbox, message):
    with pytest.raises(ContainerdConfigError, match=message) as raised:
        update_config(text, containerd, sandbox, CERTS_D)
    assert str(raised.value).startswith("/etc/containerd/config.toml")


def test_tag_and_digest_allowed_before_2_3():
    reference = PAUSE + "@sha256:" + "a" * 64
    assert update_config(None, V20, reference).after.sandbox_image == reference


def test_disabled_cri_is_removed_with_a_warning():
    text = 'version = 2\ndisabled_plugins = ["cri", "restart"]\n'
    edit = update_config(text, V16, PAUSE, CERTS_D)
    assert 'disabled_plugins = ["restart"]' in edit.text
    assert any(f.key == "disabled_plugins" for f in edit.findings)
    report = inspect_config(text, V16)
    assert any(f.key == "disabled_plugins" for f in report.findings)


def test_imports_are_noted():
    text = 'version = 3\nimports = ["/etc/containerd/conf.d/*.toml"]\n'
    edit = update_config(text, V20, PAUSE, CERTS_D)
    assert any(f.key == "imports" and f.severity is Severity.INFO for f in edit.findings)


def test_read_settings_for_report():
    settings = read_settings(DEFAULT_16)
    assert (settings.schema, settings.sandbox_image, settings.config_path) == (
        2,
        "registry.k8s.io/pause:3.6",
        "",
    )


CONTAINERD = shutil.which("containerd")
real_containerd = pytest.mark.skipif(CONTAINERD is None, reason="containerd is not installed")


def _containerd_version() -> Version:
    assert CONTAINERD is not None
    out = subprocess.run([CONTAINERD, "--version"], capture_output=True, text=True, check=True)
    return parse_containerd_version(out.stdout)


def _dump(tmp_path: Path, text: str) -> str:
    assert CONTAINERD is not None
    config = tmp_path / "config.toml"
    config.write_text(text)
    result = subprocess.run(
        [CONTAINERD, "--config", str(config), "config", "dump"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return result.stdout


@real_containerd
@pytest.mark.parametrize(
    "text", [None, CASE7, DEFAULT_16, '[plugins.cri]\n  sandbox_image = "x"\n'], ids=str
)
def test_real_containerd_reads_the_edited_file(tmp_path, text):
    version = _containerd_version()
    edit = update_config(text, version, PAUSE, CERTS_D)
    dumped = read_settings(_dump(tmp_path, edit.text))
    assert dumped.sandbox_image == PAUSE
    assert dumped.config_path == CERTS_D


@real_containerd
def test_real_containerd_ignores_a_v3_file(tmp_path):
    """What case 8 warns about, seen from the other side: 1.6 ignores version 3 tables."""
    version = _containerd_version()
    if version.major >= 2:
        pytest.skip("needs containerd 1.x")
    edit = update_config(None, Version(2, 0, 0), PAUSE, CERTS_D)
    dumped = read_settings(_dump(tmp_path, edit.text))
    assert dumped.sandbox_image != PAUSE


DEBIAN_PACKAGE_DEFAULT = """version = 2

[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/usr/lib/cni"
      conf_dir = "/etc/cni/net.d"
  [plugins."io.containerd.internal.v1.opt"]
    path = "/var/lib/containerd/opt"
"""


def test_debian_default_edited_then_edited_again():
    """The registry sub-table lands after another table: the CRI table is then split in two."""
    first = update_config(DEBIAN_PACKAGE_DEFAULT, V16, PAUSE, CERTS_D)
    again = update_config(first.text, V16, PAUSE, CERTS_D)
    assert again.text == first.text and not again.changed
    moved = update_config(first.text, V16, "registry.example.test:5000/pause:3.10", CERTS_D)
    assert moved.changed and moved.after.sandbox_image == "registry.example.test:5000/pause:3.10"
    assert moved.text.count("sandbox_image") == 1
