# bash completion for deltatap, deltatapd and deltatap-sim          -*- shell-script -*-
#
# Installed as /usr/share/bash-completion/completions/deltatap (with deltatapd and
# deltatap-sim beside it as links to it, so that bash-completion's loader finds it
# by any of the three names); or source it from ~/.bashrc. It needs nothing but
# bash 4.2 or later: bash-completion's helpers are not used, so it works the same
# with and without that package.
#
# deltatap: the commands, each command's options (those that take a value are
# offered only once, as the CLI refuses repeats), the global options anywhere on
# the line, --format values per command, --type, --color, files for --db,
# --token-file and --out, session ids for `timeline ID` and `--session ID`, and
# the answers of `analytics ANSWER`.
# The ids come from `deltatap [--db F | --url U] [--token ...] sessions --format
# ndjson`, run with what is on the line, under `timeout` (DELTATAP_COMPLETION_TIMEOUT
# seconds, default 2) and cached for 10 seconds: completion never waits longer
# than that for a daemon that does not answer. Ids holding a quote, a backslash
# or a control character are not offered.
#
# The option and command tables below follow lib/cli/args.cc (the CLI),
# lib/service/command_line.cc (deltatapd) and lib/sim/sim_args.cc (deltatap-sim);
# tests/completion_test.cc drives this file with bash.

__deltatap_commands="stats query sessions timeline export cleanup snapshot check migrate analytics"
__deltatap_global_value_options="--db --url --token --token-file --color"
__deltatap_global_flags="--utc --local --no-color --help --version"

# The options of a command, value-taking ones first, then a | and the flags.
__deltatap_command_options() {
  case $1 in
    stats | sessions) echo "--format |" ;;
    timeline) echo "--format | --archive" ;;
    query) echo "--session --type --since --until --limit --before --format | --archive" ;;
    export) echo "--format --out --to --source | --csv-raw --archive" ;;
    check) echo "| --archive" ;;
    cleanup) echo "--older-than |" ;;
    migrate) echo "--to |" ;;
    analytics) echo "--since --until --repo --tz --format |" ;;
    *) echo "|" ;;
  esac
}

# The --format values a command accepts (lib/cli/*_commands.cc, check_format).
__deltatap_formats() {
  case $1 in
    stats) echo "table json" ;;
    query | sessions) echo "table json ndjson csv" ;;
    timeline) echo "text json" ;;
    export) echo "json ndjson csv" ;;
    analytics) echo "table json csv" ;;
  esac
}

# Reads COMP_WORDS back into the words the user typed: bash splits at the
# characters of COMP_WORDBREAKS (= and :), so `--db=/tmp/a` or `--url
# http://h:9477` arrive in pieces. Pieces with no white space between them in
# COMP_LINE are joined again. Sets __dt_words, __dt_cword, __dt_cur (the
# current word as typed so far) and __dt_keep (the start of __dt_cur that bash
# does not replace: everything before the last piece, or all of it when the
# last piece is a word break itself).
__deltatap_reassemble() {
  __dt_words=()
  __dt_cword=0
  local line=$COMP_LINE pos=0 i word rest gap n=-1
  for ((i = 0; i < ${#COMP_WORDS[@]}; i++)); do
    word=${COMP_WORDS[i]}
    rest=${line:pos}
    if [[ -n $word && $rest == *"$word"* ]]; then
      gap=${rest%%"$word"*}
    else
      gap=" "  # an empty word (after white space) or one not found: a word of its own
    fi
    pos=$((pos + ${#gap} + ${#word}))
    if ((n >= 0)) && [[ -z $gap && -n $word ]]; then
      __dt_words[n]+=$word
    else
      __dt_words[++n]=$word
    fi
    if ((i == COMP_CWORD)); then
      __dt_cword=$n
      __dt_cur=${__dt_words[n]}
      if [[ -n $word && -z ${word//[=:]/} ]]; then
        __dt_keep=$__dt_cur
      else
        __dt_keep=${__dt_cur%"$word"}
      fi
      break
    fi
  done
}

# Sets COMPREPLY from candidates for the current word: each candidate is the
# whole word as it would read once completed (e.g. --format=json); what bash does
# not replace (__dt_keep) is taken off the front.
__deltatap_reply() {
  local candidate
  COMPREPLY=()
  for candidate in "$@"; do
    [[ $candidate == "$__dt_keep"* ]] && COMPREPLY+=("${candidate#"$__dt_keep"}")
  done
}

# Candidates from a word list that start with $2 (the value typed), each with
# $1 (the part of the word before the value, e.g. "--format=") in front.
__deltatap_words_matching() {
  local before=$1 typed=$2 word
  shift 2
  __dt_candidates=()
  for word in $*; do
    [[ $word == "$typed"* ]] && __dt_candidates+=("$before$word")
  done
}

# File names starting with $2, with $1 in front.
__deltatap_files() {
  local before=$1 typed=$2 file
  __dt_candidates=()
  compopt -o filenames 2>/dev/null  # only inside a completion readline runs
  # ~/ as typed works: compgen looks it up and keeps the ~ in what it returns.
  while IFS= read -r file; do
    __dt_candidates+=("$before$file")
  done < <(compgen -f -- "$typed")
}

# Sets __dt_ids to the session ids, one per line, from the source named on the
# line ($@: --db F, --url U, --token T, --token-file F as typed), asked of
# $__dt_prog, the deltatap the user runs. Empty when that fails or takes too long.
__deltatap_session_ids() {
  local key="$__dt_prog $*" line limit=${DELTATAP_COMPLETION_TIMEOUT:-2}
  local re='^[{]"sessionId":"([^"\\]*)"'  # ids with JSON escapes are left out
  __dt_ids=""
  if [[ ${__deltatap_cache_key-} == "$key" ]] && ((SECONDS - __deltatap_cache_time < 10)); then
    __dt_ids=$__deltatap_cache_ids
    return
  fi
  command -v timeout >/dev/null 2>&1 || return  # never run it without a bound
  command -v "$__dt_prog" >/dev/null 2>&1 || return
  while IFS= read -r line; do
    [[ $line =~ $re ]] || continue
    [[ ${BASH_REMATCH[1]} == *[[:cntrl:]]* ]] && continue
    __dt_ids+=${BASH_REMATCH[1]}$'\n'
  done < <(timeout -k 1 "$limit" "$__dt_prog" "$@" sessions --format ndjson 2>/dev/null </dev/null |
    head -n 10000)
  __deltatap_cache_key=$key
  __deltatap_cache_time=$SECONDS
  __deltatap_cache_ids=$__dt_ids
}

# Session ids starting with what was typed ($2), with $1 in front, quoted for the
# shell unless the user opened a quote. The rest of the arguments name the source.
__deltatap_sessions_matching() {
  local before=$1 typed=$2 id quoted="" __dt_ids
  shift 2
  __dt_candidates=()
  case $typed in
    \'* | \"*) quoted=${typed:0:1} typed=${typed:1} ;;
    *) typed=${typed//\\/} ;;
  esac
  __deltatap_session_ids "$@"
  while IFS= read -r id; do
    [[ -n $id && $id == "$typed"* ]] || continue
    if [[ -n $quoted ]]; then
      __dt_candidates+=("$before$quoted$id")
    else
      __dt_candidates+=("$before$(printf '%q' "$id")")
    fi
  done <<<"$__dt_ids"
}

_deltatap() {
  local __dt_words __dt_cword __dt_cur __dt_keep __dt_candidates __dt_prog
  __deltatap_reassemble
  local cur=$__dt_cur
  __dt_prog=${__dt_words[0]}
  [[ $__dt_prog == "~/"* ]] && __dt_prog=$HOME/${__dt_prog#"~/"}

  # What the words before the current one say: the command, how many positional
  # arguments it has, the options given, the source to ask for session ids, and
  # whether the current word is the value of an option given as `--opt VALUE`.
  local command="" positionals=0 after_dashdash=0 value_of="" seen=" " i word name value
  local command_value_options="" command_flags="" specs
  local -a src=()
  for ((i = 1; i < __dt_cword; i++)); do
    word=${__dt_words[i]}
    if ((after_dashdash)) || [[ $word != -?* ]]; then
      if [[ -z $command ]]; then
        command=$word
        specs=$(__deltatap_command_options "$command")
        command_value_options=${specs%%|*}
        command_flags=${specs#*|}
      else
        ((positionals++))
      fi
      continue
    fi
    if [[ $word == -- ]]; then
      after_dashdash=1
      continue
    fi
    name=${word%%=*}
    seen+="$name "
    [[ " $__deltatap_global_value_options $command_value_options " == *" $name "* ]] || continue
    if [[ $word == *=* ]]; then
      value=${word#*=}
    elif ((i + 1 == __dt_cword)); then
      value_of=$name
      break
    else
      value=${__dt_words[++i]}
    fi
    case $name in
      --db | --url | --token | --token-file)
        # As the shell would pass it: quotes and backslashes off, ~/ expanded.
        value=${value#[\'\"]} value=${value%[\'\"]} value=${value//\\/}
        [[ $value == "~/"* ]] && value=$HOME/${value#"~/"}
        src+=("$name" "$value")
        ;;
    esac
  done

  # An option's value: `--opt VALUE` or `--opt=VALUE`.
  local before="" typed=$cur
  if [[ -z $value_of && $after_dashdash == 0 && $cur == --*=* ]]; then
    value_of=${cur%%=*}
    before=$value_of=
    typed=${cur#*=}
  fi
  __dt_candidates=()
  if [[ -n $value_of ]]; then
    case $value_of in
      --db | --token-file | --out) __deltatap_files "$before" "$typed" ;;
      --url) __deltatap_words_matching "$before" "$typed" "http://127.0.0.1:9477" ;;
      --color) __deltatap_words_matching "$before" "$typed" "auto always never" ;;
      --format) __deltatap_words_matching "$before" "$typed" "$(__deltatap_formats "$command")" ;;
      --type) __deltatap_words_matching "$before" "$typed" "created updated deleted" ;;
      --older-than) __deltatap_words_matching "$before" "$typed" "12h 1d 7d 30d 90d" ;;
      --session) __deltatap_sessions_matching "$before" "$typed" "${src[@]}" ;;
    esac
  elif ((!after_dashdash)) && [[ $cur == -* ]]; then
    # The value options not given yet, and every flag.
    local options="" option
    for option in $__deltatap_global_value_options $command_value_options; do
      [[ $seen == *" $option "* ]] || options+=" $option"
    done
    __deltatap_words_matching "" "$cur" "$options $__deltatap_global_flags $command_flags"
  elif [[ -z $command ]]; then
    __deltatap_words_matching "" "$cur" "$__deltatap_commands"
  elif [[ $command == timeline && $positionals == 0 ]]; then
    __deltatap_sessions_matching "" "$cur" "${src[@]}"
  elif [[ $command == analytics && $positionals == 0 ]]; then
    __deltatap_words_matching "" "$cur" "durations approvals heatmap"
  fi
  __deltatap_reply "${__dt_candidates[@]}"
  return 0
}

# deltatapd and deltatap-sim: their options, and the values of those that have a
# short list of them. $1: the options that take a value; $2: the flags; then one
# "--option:VALUE VALUE..." or "--option:@files" for each option whose values
# are offered.
__deltatap_simple() {
  local __dt_words __dt_cword __dt_cur __dt_keep __dt_candidates
  __deltatap_reassemble
  local value_options=" ${1//$'\n'/ } " flags=$2 cur=$__dt_cur prev="" before="" typed=$__dt_cur
  shift 2
  ((__dt_cword > 1)) && prev=${__dt_words[__dt_cword - 1]}
  if [[ $cur == --*=* ]]; then
    prev=${cur%%=*}
    before=$prev=
    typed=${cur#*=}
  fi
  __dt_candidates=()
  if [[ -n $prev && $value_options == *" $prev "* ]]; then
    local spec
    for spec in "$@"; do
      [[ ${spec%%:*} == "$prev" ]] || continue
      if [[ ${spec#*:} == @files ]]; then
        __deltatap_files "$before" "$typed"
      else
        __deltatap_words_matching "$before" "$typed" "${spec#*:}"
      fi
    done
  elif [[ $cur == -* || -z $cur ]]; then
    __deltatap_words_matching "" "$cur" "$value_options $flags"
  fi
  __deltatap_reply "${__dt_candidates[@]}"
  return 0
}

_deltatapd() {
  __deltatap_simple "--config --url --token --db --http --log-level --log-format" \
    "--persist --no-persist --check-config --version --help" \
    "--config:@files" "--db:@files" \
    "--url:ws://127.0.0.1:3001/ws" "--http:127.0.0.1:9477" \
    "--log-level:debug info warning error" "--log-format:journal text json auto"
}

_deltatap_sim() {
  __deltatap_simple "--listen --path --token --format --count --rate --sessions --batch --seed
      --start-time --ping-interval --backpressure-bytes --record --restart-every
      --sessions-shape --log-level" \
    "--lossy --help" \
    "--record:@files" "--listen:127.0.0.1:3001 127.0.0.1:0" "--path:/ws" \
    "--format:delta session_update mixed" "--log-level:debug info warning error" \
    "--sessions-shape:list array"
}

complete -F _deltatap deltatap
complete -F _deltatapd deltatapd
complete -F _deltatap_sim deltatap-sim
