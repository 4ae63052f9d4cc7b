#!/usr/bin/env python3
"""Lints deploy/docker/Dockerfile against the rules hydra's image keeps
(hadolint is not packaged for Debian 12). Exit 1 with one line per broken
rule; then breaks the Dockerfile on purpose, rule by rule, to show each
rule can fail.

Rules:
  pinned-base      every FROM names a tag (an ARG default counts), never latest
  debian-base      the final stage and the build stage derive from Debian 12
  non-root         the final stage ends with a USER that is not root or 0
  one-package-list no apt-get/apt install in the Dockerfile: packages come
                   from scripts/packages.sh through `setup.sh --packages-only`
                   (build in the build stage, runtime in the final one), and
                   no package of that list is named in a RUN
  apt-clean        every RUN that installs packages removes /var/lib/apt/lists
  no-recommends    scripts/setup.sh's apt-get install has --no-install-recommends
  same-build       the build stage builds with `setup.sh --build-only`;
                   setup.sh always runs as .../scripts/setup.sh (it sources
                   ../scripts/packages.sh)
  healthcheck      the final stage has a HEALTHCHECK (gRPC health via hydra-healthcheck)
  exec-entrypoint  ENTRYPOINT in exec (JSON) form, through tini, running hydra-serve
  copy-sources     every COPY source exists and is not excluded by .dockerignore
  no-add           COPY, not ADD
"""
import fnmatch
import json
import os
import re
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def instructions(text):
    """(line number, INSTRUCTION, arguments) with continuations joined."""
    out, buf, start = [], "", 0
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not buf and (not stripped or stripped.startswith("#")):
            continue
        if buf and stripped.startswith("#"):
            continue
        if not buf:
            start = number
        if stripped.endswith("\\"):
            buf += stripped[:-1] + " "
            continue
        buf += stripped
        word, _, rest = buf.partition(" ")
        out.append((start, word.upper(), rest.strip()))
        buf = ""
    return out


def packages():
    """Every package name in scripts/packages.sh's arrays."""
    text = open(os.path.join(ROOT, "scripts", "packages.sh")).read()
    names = set()
    for body in re.findall(r"^\w+_PACKAGES=\(([^)]*)\)", text, re.M):
        body = re.sub(r"#.*", "", body)
        names.update(body.split())
    return names


def dockerignore():
    path = os.path.join(ROOT, ".dockerignore")
    if not os.path.exists(path):
        return None
    return [l.strip() for l in open(path) if l.strip() and not l.startswith("#")]


def ignored(path, patterns):
    path = path.rstrip("/")
    for p in patterns:
        p = p.rstrip("/")
        if p.startswith("**/"):
            if any(fnmatch.fnmatch(part, p[3:]) for part in path.split("/")):
                return True
        elif fnmatch.fnmatch(path, p) or path.startswith(p + "/"):
            return True
    return False


def lint(text, setup_text):
    errors = []
    ins = instructions(text)
    args = {}
    for _, word, rest in ins:
        if word == "ARG" and "=" in rest:
            k, v = rest.split("=", 1)
            args.setdefault(k, v.strip('"'))

    def expand(s):
        return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args.get(m.group(1) or m.group(2), m.group(0)), s)

    # Stages: name -> (base, [instructions]).
    stages, order = {}, []
    for number, word, rest in ins:
        if word == "FROM":
            parts = [p for p in rest.split() if not p.startswith("--")]
            base = parts[0]
            name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else f"stage{len(order)}"
            stages[name] = (base, [])
            order.append(name)
        elif order:
            stages[order[-1]][1].append((number, word, rest))
        if word == "ADD":
            errors.append(f"line {number}: no-add: use COPY, not ADD")
    if not order:
        return ["no FROM"]

    def parent(name, flag):
        """The FROM of a stage with HYDRA_CUDA=flag and ARG defaults filled in."""
        return expand(re.sub(r"\$\{?HYDRA_CUDA\}?", flag, stages[name][0]))

    def root_image(name, flag):
        """The registry image a stage derives from."""
        seen = set()
        while name in stages and name not in seen:
            seen.add(name)
            name = parent(name, flag)
        return name

    for name in order:
        base = expand(stages[name][0])
        if re.search(r"\$\{?HYDRA_CUDA", stages[name][0]):
            continue  # resolved through its ON/OFF stages
        if base in stages:
            continue
        image = base.split("@")[0]
        tag = image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else ""
        if not tag and "@" not in base:
            errors.append(f"stage {name}: pinned-base: {base} has no tag")
        if tag == "latest":
            errors.append(f"stage {name}: pinned-base: {base} uses latest")

    final = order[-1]
    build = next((n for n in order if n == "build"), None)
    for stage, what in ((final, "final"), (build, "build")):
        if stage is None:
            errors.append(f"debian-base: no {what} stage")
            continue
        for flag in ("OFF", "ON"):
            image = root_image(stage, flag)
            if not re.match(r"^debian:(12|bookworm)", image):
                errors.append(f"debian-base: the {what} stage (HYDRA_CUDA={flag}) derives from {image}, not Debian 12")

    # The final stage's own instructions and its parents' (runtime-OFF, ...).
    def chain(name, flag="OFF"):
        """A stage's instructions after those of the stages it derives from."""
        out, seen = [], set()
        while name in stages and name not in seen:
            seen.add(name)
            out = stages[name][1] + out
            name = parent(name, flag)
        return out

    final_ins = chain(final)
    users = [rest for _, w, rest in final_ins if w == "USER"]
    if not users or users[-1].split(":")[0] in ("root", "0"):
        errors.append("non-root: the final stage must end with a non-root USER")
    if not any(w == "HEALTHCHECK" and "NONE" not in rest.upper() for _, w, rest in final_ins):
        errors.append("healthcheck: the final stage has no HEALTHCHECK")
    entry = [rest for _, w, rest in final_ins if w == "ENTRYPOINT"]
    try:
        entry_argv = json.loads(entry[-1]) if entry else None
    except ValueError:
        entry_argv = None
    if not entry_argv or not any(a.endswith("tini") for a in entry_argv) or not any(
            a.endswith("hydra-serve") for a in entry_argv):
        errors.append("exec-entrypoint: ENTRYPOINT must be exec form: tini -- hydra-serve")

    pkgs = packages()
    groups_by_stage = {}
    for name in order:
        for number, word, rest in chain(name) if name in (final, build) else stages[name][1]:
            if word != "RUN":
                continue
            if re.search(r"\bapt(-get)?\s+(-\S+\s+)*install\b", rest):
                errors.append(f"line {number}: one-package-list: install packages through scripts/setup.sh --packages-only")
            named = sorted(p for p in pkgs if re.search(r"(?<![\w./-])" + re.escape(p) + r"(?![\w.+-])", rest))
            if named:
                errors.append(f"line {number}: one-package-list: names packages of scripts/packages.sh: {', '.join(named)}")
            m = re.search(r"setup\.sh\s+--packages-only\s+([\w ]+)", rest)
            if m:
                groups_by_stage.setdefault(name, set()).update(m.group(1).split())
                if "rm -rf /var/lib/apt/lists" not in rest:
                    errors.append(f"line {number}: apt-clean: remove /var/lib/apt/lists/* in the same RUN")
    if "build" not in groups_by_stage.get(build, set()):
        errors.append("one-package-list: the build stage must run setup.sh --packages-only build")
    if "runtime" not in groups_by_stage.get(final, set()) or "build" in groups_by_stage.get(final, set()):
        errors.append("one-package-list: the final stage must install the runtime group (and not build)")
    if build and not any(w == "RUN" and "setup.sh --build-only" in r for _, w, r in stages[build][1]):
        errors.append("same-build: the build stage must build through scripts/setup.sh --build-only")
    for number, word, rest in ins:
        for call in re.findall(r"\S*setup\.sh\b", rest) if word == "RUN" else []:
            if not call.endswith("scripts/setup.sh"):
                errors.append(f"line {number}: same-build: run setup.sh as <dir>/scripts/setup.sh, not {call}")
    install_lines = [l for l in setup_text.splitlines() if re.search(r"apt-get\s+install", l)]
    if not install_lines or not all("--no-install-recommends" in l for l in install_lines):
        errors.append("no-recommends: scripts/setup.sh must apt-get install --no-install-recommends")

    patterns = dockerignore()
    if patterns is None:
        errors.append("copy-sources: no .dockerignore")
        patterns = []
    for number, word, rest in ins:
        if word != "COPY" or "--from=" in rest:
            continue
        parts = [p for p in rest.split() if not p.startswith("--")]
        for src in parts[:-1]:
            if not os.path.exists(os.path.join(ROOT, src)):
                errors.append(f"line {number}: copy-sources: {src} does not exist")
            elif ignored(src, patterns):
                errors.append(f"line {number}: copy-sources: {src} is excluded by .dockerignore")
    for number, word, rest in ins:
        m = re.search(r"--mount=type=bind,source=([^,\s]+)", rest)
        if m and ignored(m.group(1), patterns):
            errors.append(f"line {number}: copy-sources: {m.group(1)} is excluded by .dockerignore")
    return errors


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "deploy", "docker", "Dockerfile")
    text = open(path).read()
    setup_text = open(os.path.join(ROOT, "scripts", "setup.sh")).read()
    errors = lint(text, setup_text)
    for e in errors:
        print(f"FAIL: {path}: {e}")
    if errors:
        return 1
    print(f"ok: {os.path.relpath(path, ROOT)} keeps every rule")
    # Each mutation must break at least one rule.
    mutations = {
        "latest base": (r"ARG DEBIAN_IMAGE=\S+", "ARG DEBIAN_IMAGE=debian:latest"),
        "root user": (r"USER 10001:10001\nWORKDIR /home/hydra", "USER root\nWORKDIR /home/hydra"),
        "apt-get install in a RUN": (r"(FROM runtime-OFF AS runtime-ON\n)",
                                     r"\1RUN apt-get install -y --no-install-recommends tini\n"),
        "package named in a RUN": (r"(FROM runtime-OFF AS runtime-ON\n)", r"\1RUN dpkg -s libgomp1\n"),
        "no apt list cleanup": (r"--packages-only build && rm -rf /var/lib/apt/lists/\*", "--packages-only build"),
        "no HEALTHCHECK": (r"HEALTHCHECK[^\n]*\\\n[^\n]*\n", ""),
        "shell-form entrypoint": (r'ENTRYPOINT \[[^\n]*\]', "ENTRYPOINT /usr/local/bin/hydra-serve"),
        "ubuntu final stage": (r"FROM \$\{DEBIAN_IMAGE\} AS runtime-OFF", "FROM ubuntu:24.04 AS runtime-OFF"),
        "COPY of an ignored path": (r"COPY deploy/docker/serve.flags", "COPY models/stories15M"),
        "setup.sh outside scripts/": (r"target=/tmp/hydra/scripts \\\n    /tmp/hydra/scripts/setup.sh",
                                      "target=/tmp/s \\\n    /tmp/s/setup.sh"),
    }
    failed = 0
    for what, (pattern, repl) in mutations.items():
        broken, n = re.subn(pattern, repl, text, count=1)
        if n == 0:
            print(f"FAIL: self-test '{what}': pattern not found in the Dockerfile")
            failed += 1
            continue
        found = lint(broken, setup_text)
        if not found:
            print(f"FAIL: self-test: the lint accepts a Dockerfile with {what}")
            failed += 1
        else:
            print(f"ok: rejects {what}: {found[0]}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
