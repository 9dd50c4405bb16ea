ARG BASE=ubuntu
ARG TAG
FROM ${BASE}:${TAG:-22.04}
ARG BASE
ARG user=someuser buildno
ARG QUOTED="a b"
RUN echo $user $buildno
