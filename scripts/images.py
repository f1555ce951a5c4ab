"""Build every image of the compose deployment from a Debian mirror, no registry.

    python scripts/images.py [--refresh-base]        # `make images`

1. ``bookstore/debian:bookworm``: a minimal Debian root filesystem made by
   debootstrap from DEBIAN_MIRROR and imported into Docker. Made once; kept
   until ``--refresh-base`` (for Debian's security updates).
2. ``bookstore/debian-build:bookworm``: the same, trusting the host's extra CA
   certificates (EXTRA_CA_CERTS: files or folders, default the host's
   /usr/local/share/ca-certificates). Only build stages start from it (pip
   behind a proxy that re-signs TLS); no runtime image contains them.
3. On those: ``bookstore/app`` (compose/Dockerfile) and the backing services
   ``bookstore/rabbitmq``, ``bookstore/postgres``, ``bookstore/redis``,
   ``bookstore/haproxy`` (the swarm stack's front door)
   (compose/images/*), tagged IMAGE_TAG (default ``local``); pip in the
   build reads IMAGE_PIP_INDEX_URL when set (a PyPI mirror). Docker's layer
   cache makes a rebuild with nothing changed take seconds.

Needs a running Docker Engine, and root (or sudo) with debootstrap installed
for step 1.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
IMAGES = REPO / "compose" / "images"
SUITE = "bookworm"
BASE = f"bookstore/debian:{SUITE}"
BUILD_BASE = f"bookstore/debian-build:{SUITE}"
SERVICES = ("rabbitmq", "postgres", "redis", "haproxy")

# Written into the root filesystem before it becomes an image.
# Packages must not start services while an image is built (the convention
# of Debian's own container images)...
POLICY_RC_D = "#!/bin/sh\nexit 101\n"
# ...nor bring what they only recommend, nor documentation.
APT_CONF = 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n'
DPKG_NODOC = """\
path-exclude /usr/share/doc/*
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
"""


class ImageError(RuntimeError):
    pass


def run(*command: str, **kwargs: object) -> None:
    print("+", " ".join(command), flush=True)
    if subprocess.run(command, check=False, **kwargs).returncode:  # type: ignore[call-overload]
        raise ImageError(f"failed: {' '.join(command)}")


def docker(*args: str, **kwargs: object) -> None:
    run("docker", *args, **kwargs)


def image_exists(name: str) -> bool:
    return (
        subprocess.run(
            ["docker", "image", "inspect", name], capture_output=True, check=False
        ).returncode
        == 0
    )


def check_docker() -> None:
    if shutil.which("docker") is None:
        raise ImageError("no docker command: install Docker Engine (apt-get install docker.io)")
    probe = subprocess.run(["docker", "info"], capture_output=True, text=True, check=False)
    if probe.returncode:
        raise ImageError(
            "Docker Engine does not answer (start it: dockerd, or systemctl start docker): "
            + (probe.stderr.strip().splitlines() or ["no error text"])[-1]
        )


def as_root(*command: str) -> tuple[str, ...]:
    return command if os.geteuid() == 0 else ("sudo", *command)


def make_base(mirror: str, security_mirror: str) -> None:
    """debootstrap a minimal bookworm and import it as BASE."""
    if shutil.which("debootstrap") is None:
        raise ImageError("debootstrap is missing: apt-get install debootstrap")
    with tempfile.TemporaryDirectory(prefix="bookstore-rootfs-") as scratch:
        root = Path(scratch) / "rootfs"
        try:
            run(
                *as_root("debootstrap", "--variant=minbase", "--include=ca-certificates"),
                SUITE,
                str(root),
                mirror,
                stdout=subprocess.DEVNULL,
            )
            files = {
                "usr/sbin/policy-rc.d": (POLICY_RC_D, 0o755),
                "etc/apt/apt.conf.d/90bookstore": (APT_CONF, 0o644),
                "etc/dpkg/dpkg.cfg.d/90bookstore-nodoc": (DPKG_NODOC, 0o644),
                "etc/apt/sources.list": (
                    f"deb {mirror} {SUITE} main\n"
                    f"deb {mirror} {SUITE}-updates main\n"
                    f"deb {security_mirror} {SUITE}-security main\n",
                    0o644,
                ),
            }
            for relative, (text, mode) in files.items():
                write_as_root(root / relative, text, mode)
            run(*as_root("sh", "-c", f"rm -rf {root}/var/lib/apt/lists/* {root}/var/cache/apt/*"))
            tar = subprocess.Popen(
                [*as_root("tar", "--numeric-owner", "-C", str(root), "-c", ".")],
                stdout=subprocess.PIPE,
            )
            docker(
                "import",
                "--change",
                "ENV LANG=C.UTF-8",
                "--change",
                'CMD ["bash"]',
                "-",
                BASE,
                stdin=tar.stdout,
                stdout=subprocess.DEVNULL,
            )
            if tar.wait():
                raise ImageError("tar of the root filesystem failed")
        finally:
            # debootstrap leaves root-owned files (and /proc mounts on failure).
            subprocess.run([*as_root("rm", "-rf", "--one-file-system", str(root))], check=False)


def write_as_root(path: Path, text: str, mode: int) -> None:
    if os.geteuid() == 0:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(mode)
        return
    run("sudo", "install", "-D", "-m", oct(mode)[2:], "/dev/stdin", str(path), input=text.encode())


def extra_ca_files(setting: str | None) -> list[Path]:
    """The certificates named by EXTRA_CA_CERTS (files or folders; ':' between)."""
    places = [Path(p) for p in (setting or "/usr/local/share/ca-certificates").split(":") if p]
    files: list[Path] = []
    for place in places:
        if place.is_dir():
            files += sorted(
                p
                for p in place.rglob("*")
                if p.is_file() and "CERTIFICATE" in p.read_text(errors="replace")
            )
        elif place.is_file():
            files.append(place)
        elif setting:
            raise ImageError(f"EXTRA_CA_CERTS: {place} does not exist")
    return files


def make_build_base(ca_files: list[Path]) -> None:
    """BASE plus the extra CA certificates, for build stages only."""
    if not ca_files:
        docker("tag", BASE, BUILD_BASE)
        return
    with tempfile.TemporaryDirectory(prefix="bookstore-ca-") as context:
        folder = Path(context) / "extra-ca"
        folder.mkdir()
        for index, source in enumerate(ca_files):
            # update-ca-certificates takes *.crt only.
            shutil.copyfile(source, folder / f"{index:02d}-{source.stem}.crt")
        (Path(context) / "Dockerfile").write_text(
            f"FROM {BASE}\n"
            "COPY extra-ca/ /usr/local/share/ca-certificates/\n"
            "RUN update-ca-certificates >/dev/null\n"
        )
        docker("build", "--quiet", "-t", BUILD_BASE, context, stdout=subprocess.DEVNULL)


def build(tag: str, pip_index: str | None) -> None:
    """Every image at once: each mostly waits on its downloads (apt, pip), so
    side by side they take little more than the longest alone. Each build's
    output is printed whole when it ends, never interleaved with another's."""
    base_args = ["--build-arg", f"BASE_IMAGE={BASE}", "--build-arg", f"BUILD_IMAGE={BUILD_BASE}"]
    pip_args = ["--build-arg", f"PIP_INDEX_URL={pip_index}"] if pip_index else []
    # Image -> its `docker build` arguments, the context last.
    builds = {
        f"bookstore/{service}:{tag}": [*base_args, str(IMAGES / service)] for service in SERVICES
    }
    builds[f"bookstore/app:{tag}"] = [*base_args, *pip_args, "-f", "compose/Dockerfile", "."]
    with ThreadPoolExecutor(max_workers=len(builds)) as pool:
        done = {image: pool.submit(_build, ["-t", image, *args]) for image, args in builds.items()}
    failed = [image for image, outcome in done.items() if not outcome.result()]
    if failed:
        raise ImageError(f"failed to build {', '.join(failed)} (its output is above)")


def _build(args: list[str]) -> bool:
    command = ["docker", "build", *args]
    finished = subprocess.run(
        command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False
    )
    print(f"+ {' '.join(command)}\n{finished.stdout}", flush=True)
    return finished.returncode == 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--refresh-base", action="store_true", help="debootstrap the base again")
    args = parser.parse_args(argv)
    try:
        check_docker()
        if args.refresh_base or not image_exists(BASE):
            make_base(
                os.environ.get("DEBIAN_MIRROR") or "http://deb.debian.org/debian",
                os.environ.get("DEBIAN_SECURITY_MIRROR") or "http://deb.debian.org/debian-security",
            )
        make_build_base(extra_ca_files(os.environ.get("EXTRA_CA_CERTS")))
        build(os.environ.get("IMAGE_TAG") or "local", os.environ.get("IMAGE_PIP_INDEX_URL"))
    except ImageError as error:
        print(f"images: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
