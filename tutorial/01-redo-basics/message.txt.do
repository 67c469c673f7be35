# message.txt: the greeting and the name joined into one line.
echo "$1" >> runs.log
redo-ifchange greeting.txt name.txt
printf '%s, %s!\n' "$(cat greeting.txt)" "$(cat name.txt)"
