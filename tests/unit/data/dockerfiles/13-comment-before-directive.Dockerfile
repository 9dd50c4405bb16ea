# About my dockerfile
# escape=`
FROM busybox
RUN echo one \
  two
