FROM alpine
RUN echo a \
  b
ENV X=1
