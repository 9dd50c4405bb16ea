# syntax=docker/dockerfile:1
FROM alpine
RUN <<EOT sh
  set -ex
  apk add --no-cache vim
EOT
RUN <<EOF
#!/usr/bin/env python
print("hello world")
EOF
RUN <<FILE1 cat > file1 && <<FILE2 cat > file2
I am
first
FILE1
I am
second
FILE2
COPY <<EOF greeting.txt
hello world
EOF
COPY <<-EOT /script.sh
	echo "hello ${FOO}"
	EOT
COPY <<-"EOT" /script2.sh
	echo "hello ${FOO}"
EOT
RUN 3<<IN cat <&3
via fd 3
IN
RUN cat <<EOF | \
  grep x
x

EOF
