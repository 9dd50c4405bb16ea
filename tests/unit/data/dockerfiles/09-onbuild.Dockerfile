FROM python:3.12-slim
ONBUILD ADD . /app/src
ONBUILD RUN /usr/local/bin/python-build --dir /app/src
onbuild copy --from=build /usr/bin/app /app
ONBUILD CMD ["python", "app.py"]
ONBUILD   ENV   A=1   B=2
