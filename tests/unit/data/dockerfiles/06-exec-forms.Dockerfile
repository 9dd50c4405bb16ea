FROM alpine
RUN ["/bin/sh", "-c", "echo exec form"]
RUN [ "echo", "spaced", "brackets" ]
CMD [ "not", "valid", json ]
ENTRYPOINT ["c:\windows\system32\tasklist.exe"]
CMD []
ENTRYPOINT ["a", "b"] trailing text
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN echo shell form after SHELL
CMD ["unicode \u00e9", "tab\tinside", "quote\"inside"]
