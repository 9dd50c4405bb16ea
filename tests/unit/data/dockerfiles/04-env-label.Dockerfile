FROM busybox
ENV PATH=/usr/local/bin:$PATH LANG=C.UTF-8
ENV MY_NAME="John Doe" MY_DOG=Rex\ The\ Dog \
    MY_CAT=fluffy
ENV legacy value with spaces
ENV EMPTY=
LABEL "com.example.vendor"="ACME Incorporated"
LABEL version="1.0" description='single quoted'
LABEL multi.label1="value1" \
      multi.label2="value2" other="value3"
LABEL legacy form
