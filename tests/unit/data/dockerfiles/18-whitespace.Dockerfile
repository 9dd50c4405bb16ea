   FROM    alpine   AS   base   
	WORKDIR   /path with spaces   
ENV   A=b   
CMD    echo   keep   inner   spaces   
RUN echo "\
     hello\
     world"
