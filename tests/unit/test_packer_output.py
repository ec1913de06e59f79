"""The machine-readable output parser, on lines as Packer 1.6.6 writes them."""

from __future__ import annotations

from build.packer import PackerRun, parse_machine_line, parse_machine_output

SAMPLE = """\
1795438737,,ui,say,==> file.disk: Running local shell script: /tmp/packer-shell3319612773
1795438737,,ui,message,    file.disk: building x%!(PACKER_COMMA) really
1795438738,,ui,say,\\n==> Builds finished. The artifacts of successful builds are:
1795438738,file.disk,artifact-count,1
1795438738,file.disk,artifact,0,builder-id,packer.file
1795438738,file.disk,artifact,0,id,File
1795438738,file.disk,artifact,0,string,Stored file: /tmp/pk/out/o1/disk.raw
1795438738,file.disk,artifact,0,files-count,1
1795438738,file.disk,artifact,0,file,0,/tmp/pk/out/o1/disk.raw
1795438738,file.disk,artifact,0,end
1795438738,qemu.vm,artifact,0,files-count,2
1795438738,qemu.vm,artifact,0,file,0,output/efivars.fd
1795438738,qemu.vm,artifact,0,file,1,output/tpl-debian12
plain text that is not machine readable
"""

FAILED = """\
1795438800,,ui,error,Build 'qemu.vm' errored after 3 minutes: Script exited with non-zero exit status: 3.Allowed exit codes are: [0]
1795438800,,error-count,1
1795438800,,ui,error,\\n==> Some builds didn't complete successfully and had errors:
"""


def test_parse_line_unescapes_commas_and_newlines() -> None:
    ml = parse_machine_line("1,,ui,message,a%!(PACKER_COMMA) b\\nc")
    assert ml is not None
    assert (ml.type, ml.data) == ("ui", ["message", "a, b\nc"])
    assert parse_machine_line("==> not machine readable") is None


def test_artifacts_per_builder() -> None:
    out = parse_machine_output(SAMPLE)
    assert out.artifacts == {
        "file.disk": ["/tmp/pk/out/o1/disk.raw"],
        "qemu.vm": ["output/efivars.fd", "output/tpl-debian12"],
    }
    assert out.files()[0] == "/tmp/pk/out/o1/disk.raw"
    assert any("building x, really" in u for u in out.ui)


def test_errors_and_failure_message() -> None:
    out = parse_machine_output(FAILED)
    assert out.error_count == 1
    run = PackerRun(returncode=1, output=out, duration_s=180)
    assert not run.ok
    msg = run.failure_message()
    assert msg.startswith("Packer build failed (exit 1):")
    assert "Some builds didn't complete" in msg or "non-zero exit status" in msg


def test_timeout_and_interrupt_messages() -> None:
    out = parse_machine_output("")
    assert "timed out after 42s" in PackerRun(1, out, 42.0, timed_out=True).failure_message()
    assert "interrupted" in PackerRun(1, out, 1.0, interrupted=True).failure_message()
