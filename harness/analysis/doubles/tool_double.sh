#!/bin/sh
# Test double for `cargo` and `rustup` (harness.analysis.sandbox installs it under both names):
# records each call, builds nothing. POSIX sh rather than Python on purpose: the static checks
# run it some twenty times per Dockerfile, and sh starts in a millisecond where an interpreter
# takes tens. Nothing here may depend on the caller: it runs in the environment BuildKit would
# give the RUN script, with only PATH and HARNESS_DOUBLE_LOG added.
#
# Each call appends one record to $HARNESS_DOUBLE_LOG, every field ended by a NUL byte (which
# no argument or variable can hold): the tool, the number of arguments, the arguments, then the
# environment as the shell's `export -p` prints it, in shell quoting (a builtin: no process).
#
# `cargo build` (or `cargo auditable build`) creates target/<triple>/release/<bin> for each
# --target, holding "<bin> built for <triple>", so that a later `mv` can be traced back to the
# target it was built for.
set -eu
tool=${0##*/}
{
  printf '%s\0' "$tool" "$#" "$@"
  export -p
  printf '\0'
} >>"$HARNESS_DOUBLE_LOG"
[ "$tool" = cargo ] || exit 0

# The first two words (arguments not starting with `-`) say whether this is a build.
first='' second='' words=0
for arg in "$@"; do
  case $arg in -*) continue ;; esac
  words=$((words + 1))
  if [ "$words" = 1 ]; then
    first=$arg
  else
    second=$arg
    break
  fi
done
if [ "$first" = build ] || { [ "$first" = auditable ] && [ "$second" = build ]; }; then :; else exit 0; fi

# --bin NAME / --bin=NAME (the last one counts) and every --target TRIPLE / --target=TRIPLE.
bin=mas-cli
takes=''
for arg in "$@"; do
  case $takes in
    bin) bin=$arg; takes=''; continue ;;
    target) takes=''; continue ;;
  esac
  case $arg in
    --bin) takes=bin ;;
    --bin=*) bin=${arg#--bin=} ;;
    --target) takes=target ;;
  esac
done

build() {
  mkdir -p "target/$1/release"
  printf '%s built for %s\n' "$bin" "$1" >"target/$1/release/$bin"
}
takes=''
for arg in "$@"; do
  case $takes in
    target) build "$arg"; takes=''; continue ;;
    bin) takes=''; continue ;;
  esac
  case $arg in
    --target) takes=target ;;
    --target=*) build "${arg#--target=}" ;;
    --bin) takes=bin ;;
  esac
done
