"""The files the course writes into its build contexts: the seed's Dockerfiles, adapted to a machine
with no Docker Hub and no internet inside containers (comments in each say what changed and why).

``BASE`` and ``BUILD_BASE`` are the images ``contrib/mkimage`` makes from Debian packages
(``debian:bookworm`` minbase, and the same with build-essential for the C examples).
"""

from __future__ import annotations

BASE = "debian:bookworm"
BUILD_BASE = "debian:bookworm-build"
SMALL = "busybox"

HELLO_WORLD_DOCKERFILE = """\
# Docker Hub's hello-world is not reachable here: this one is made from busybox.
FROM busybox
COPY hello.txt /
CMD ["cat", "/hello.txt"]
"""

HELLO_WORLD_TEXT = """\

Hello from berth!
This message shows that your installation appears to be working correctly.

To generate this message, berth took the following steps:
 1. The berth client contacted the berth daemon (berthd).
 2. The daemon found the "hello-world" image locally (built from busybox: no Docker Hub here).
 3. The daemon created a new container from that image, which runs the command that
    produced the output you are currently reading.
 4. The daemon streamed that output to the berth client, which sent it to your terminal.
"""

COWSAY_DOCKERFILE = f"""\
# The course: FROM ubuntu / RUN apt-get update / RUN apt-get -y install cowsay.
# Containers here have no internet, so the .deb files of cowsay and of its dependencies were
# fetched on the host (apt-get download) into this build context, and apt installs them.
FROM {BASE}
COPY debs /debs
RUN apt-get install -y --no-install-recommends /debs/*.deb && rm -rf /debs
"""

MYCOWSAY_DOCKERFILE = f"""\
# The course's ENTRYPOINT/CMD example (FROM ubuntu, apt-get install cowsay), with the .deb files
# in the context as for the cowsay image: the first steps are the same, so they come from the cache.
FROM {BASE}
COPY debs /debs
RUN apt-get install -y --no-install-recommends /debs/*.deb && rm -rf /debs
ENTRYPOINT ["/usr/games/cowsay", "-e", "%%"]
CMD ["hello world"]
"""

FROMGIT_DOCKERFILE = """\
# Built from a git URL: berthd clones the repository, checks out branch "container" and uses
# its docker/ directory as the build context.
FROM busybox
CMD ["echo", "built from a git repository (branch container, directory docker)"]
"""

HELLO_C = """\
#include <stdio.h>

int main(void)
{
    printf("Hello, world! (a C program built in a berth build)\\n");
    return 0;
}
"""

HELLO_DOCKERFILE = f"""\
# The course: FROM ubuntu / RUN apt-get update / RUN apt-get install -y build-essential.
# {BUILD_BASE} is Debian with build-essential already installed (no internet in containers).
FROM {BUILD_BASE}
COPY hello.c /
RUN make hello
CMD /hello
"""

HELLO_MULTI_DOCKERFILE = f"""\
# The course's multi-stage build: compile in a first stage, keep only /hello.
FROM {BUILD_BASE} AS compiler
COPY hello.c /
RUN make hello
FROM {BASE}
COPY --from=compiler /hello /hello
CMD /hello
"""

WEB_DOCKERFILE = """\
# The course runs nginx from Docker Hub; here busybox's httpd serves the page (-v logs requests).
FROM busybox
COPY index.html /www/index.html
EXPOSE 80
CMD ["httpd", "-f", "-v", "-p", "80", "-h", "/www"]
"""

WEB_INDEX = """\
<!DOCTYPE html>
<html><body><h1>Bienvenue sur berth</h1><p>Served by busybox httpd in a berth container.</p></body></html>
"""

CODE_INDEX = """\
This file lives on the host, in the demo's code/ folder; the container sees it at /app.
"""
