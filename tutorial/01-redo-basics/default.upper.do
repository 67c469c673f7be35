# ANYTHING.upper: the file ANYTHING in capital letters ($2 is $1 without ".upper").
echo "$1" >> runs.log
redo-ifchange "$2"
tr '[:lower:]' '[:upper:]' < "$2" > "$3"
