# all: everything this chapter builds. It writes no output of its own.
echo "$1" >> runs.log
redo-ifchange message.txt.upper stats.txt
