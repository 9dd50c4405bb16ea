FROM alpine
CMD [ "a",]
CMD ['single', 'quotes']
RUN ["echo", "a\\b"]
CMD {"not": "an array"}
ENTRYPOINT "quoted string"
RUN [NaN]
