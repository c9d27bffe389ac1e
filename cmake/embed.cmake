# cmake -DIN=file -DOUT=file.c -DSYM=name -P embed.cmake
# Writes OUT defining `const char SYM[]` (the bytes of IN, NUL-terminated)
# and `const unsigned long SYM_len`: data compiled into a binary so it never
# needs the file (or the network) at run time.
file(READ "${IN}" hex HEX)
string(LENGTH "${hex}" n)
math(EXPR len "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
string(REGEX REPLACE "((0x..,){16})" "\\1\n" body "${body}")
file(WRITE "${OUT}.tmp" "/* Generated from ${IN} by cmake/embed.cmake; do not edit. */\n"
  "const char ${SYM}[] = {\n${body}0x00};\nconst unsigned long ${SYM}_len = ${len};\n")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUT}.tmp")
