#!/usr/bin/env bash
# Checks Make's rule database: every compile, every link and the generated config.mk wait for
# the dependency check (build/deps.stamp). A prerequisite named by a variable that is defined
# after the rule is read expands to nothing without a word from Make; only the database shows it.
# Also: an OUT in the environment does not move the results.
# Prints one "ok - …" / "not ok - …" line per rule; exits 1 if any rule lost the stamp.
set -uo pipefail
# The release build's rules, whatever build type the make that runs this one has (make test-asan's
# BUILD_TYPE=asan moves every rule under build/asan/).
db=$(make --no-print-directory -p -n BUILD_TYPE=release help 2>/dev/null) || { echo "not ok - make -p could not read the Makefile"; exit 1; }
stamp=$(sed -n 's/^DEPS_STAMP := //p' <<<"$db")
status=0
if [ -z "$stamp" ]; then echo "not ok - DEPS_STAMP is not defined"; exit 1; fi

# rule TARGET-REGEX LABEL: the rule's order-only prerequisites (after '|') must hold the stamp.
rule() {
  local line
  line=$(grep -E "^$1:" <<<"$db" | grep -F ' | ' | head -n 1)
  if [ -z "$line" ]; then
    echo "not ok - $2: no rule with order-only prerequisites in make -p"; status=1
  elif [[ " ${line#* | } " == *" $stamp "* ]]; then
    echo "ok - $2 waits for $stamp"
  else
    echo "not ok - $2 does not wait for $stamp: $line"; status=1
  fi
}
rule 'build/obj/%\.o' "compiling src/*.cpp"
rule 'build/obj/tests/%\.o' "compiling tests/*.cpp"
rule 'build/obj/%\.cu\.o' "compiling src/*.cu"
rule 'build/minitx' "linking build/minitx"
rule 'build/minitx-tests' "linking build/minitx-tests"
rule 'out/\.stamps/config\.mk' "generating out/.stamps/config.mk"
# A shell's OUT is not the pipeline's: results stay under out/ unless OUT is given to make.
out_of() { env "$@" make --no-print-directory -p -n BUILD_TYPE=release help 2>/dev/null | sed -n 's/^OUT [:?]*= //p' | head -n 1; }
out_plain=$(out_of -u OUT) out_env=$(out_of OUT=/elsewhere)
if [ -n "$out_plain" ] && [ "$out_env" = "$out_plain" ]; then echo "ok - OUT from the environment is ignored"
else echo "not ok - OUT from the environment made OUT '$out_env' (without it: '$out_plain')"; status=1; fi
exit $status
