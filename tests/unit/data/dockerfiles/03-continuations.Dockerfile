FROM debian:bookworm
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        ca-certificates \
        # a comment inside the continuation is dropped
        curl \

        git \
    && rm -rf /var/lib/apt/lists/*
RUN echo "we are running some # of cool things"
   # an indented comment
	RUN echo indented instruction
