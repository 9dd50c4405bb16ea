# escape=`

FROM mcr.microsoft.com/windows/nanoserver
COPY testfile.txt c:\
RUN dir c:\
RUN powershell -command `
    Write-Host hello
ENV PATH="c:\tools;c:\bin" SEP=a`"b
