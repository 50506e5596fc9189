# The tests: tests/<concept>_test.cc builds test_<concept>, run by ctest as
# <concept>, with a row in the table below. docs/testing.md says how they are
# run (scripts/test) and what the labels select.

enable_testing()

add_library(deltatap_test_support STATIC ${CMAKE_SOURCE_DIR}/tests/support/test_support.cc
  ${CMAKE_SOURCE_DIR}/tests/support/postgres_fixture.cc)
target_include_directories(deltatap_test_support PUBLIC ${CMAKE_SOURCE_DIR}/tests/support)
target_compile_definitions(deltatap_test_support PRIVATE DELTATAP_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
target_link_libraries(deltatap_test_support PUBLIC deltatap_lib)

# Every test program's main() (tests/support/test_main.cc): Boost.Test's own
# run, then exit 77 when a case was skipped (tests/support/skip.h), which
# SKIP_RETURN_CODE makes ctest report as Skipped instead of Passed.
add_library(deltatap_test_main OBJECT ${CMAKE_SOURCE_DIR}/tests/support/test_main.cc)
target_include_directories(deltatap_test_main PUBLIC ${CMAKE_SOURCE_DIR}/tests/support)
target_compile_definitions(deltatap_test_main PUBLIC BOOST_TEST_DYN_LINK BOOST_TEST_NO_MAIN)
target_link_libraries(deltatap_test_main PUBLIC Boost::unit_test_framework)

set(DELTATAP_TEST_NAMES)
file(GLOB DELTATAP_TESTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/*_test.cc)
foreach(test_source ${DELTATAP_TESTS})
  get_filename_component(name ${test_source} NAME_WE)
  string(REGEX REPLACE "_test$" "" name ${name})
  add_executable(test_${name} ${test_source})
  target_link_libraries(test_${name} PRIVATE deltatap_test_support deltatap_test_main)
  add_test(NAME ${name} COMMAND test_${name})
  set_tests_properties(${name} PROPERTIES SKIP_RETURN_CODE 77)
  list(APPEND DELTATAP_TEST_NAMES ${name})
endforeach()

# The parser's invariant asks a second JSON parser (tests/fuzz/json_oracle.h).
foreach(uses_oracle test_parser_corpus test_parser)
  if(TARGET ${uses_oracle})
    target_sources(${uses_oracle} PRIVATE ${CMAKE_SOURCE_DIR}/tests/fuzz/json_oracle.cc)
  endif()
endforeach()

# compression_test loads the SQLite extension into a sqlite3 shell.
if(TARGET test_compression AND TARGET deltatap_sqlite)
  add_dependencies(test_compression deltatap_sqlite)
endif()

# The timeouts below are for the normal build. The sanitizer builds run the
# same tests slower (ASan+UBSan is a Debug build; TSan checks every memory
# access), so their timeouts are these times a factor.
if(DELTATAP_SANITIZE STREQUAL "thread")
  set(DELTATAP_TEST_TIMEOUT_FACTOR 4)
elseif(DELTATAP_SANITIZE)
  set(DELTATAP_TEST_TIMEOUT_FACTOR 3)
else()
  set(DELTATAP_TEST_TIMEOUT_FACTOR 1)
endif()

# Rows of four cells: test, timeout in seconds, labels (comma-separated),
# sharing ("-": runs beside anything; "serial": RUN_SERIAL, alone; else
# RESOURCE_LOCK names, comma-separated).
function(deltatap_test_table)
  set(cells ${ARGN})
  list(LENGTH cells count)
  math(EXPR partial "${count} % 4")
  if(NOT partial EQUAL 0)
    message(FATAL_ERROR "cmake/tests.cmake: every row of the test table has four cells")
  endif()
  set(tabled)
  math(EXPR last "${count} - 1")
  foreach(at RANGE 0 ${last} 4)
    math(EXPR at_timeout "${at} + 1")
    math(EXPR at_labels "${at} + 2")
    math(EXPR at_sharing "${at} + 3")
    list(GET cells ${at} name)
    list(GET cells ${at_timeout} timeout)
    list(GET cells ${at_labels} labels)
    list(GET cells ${at_sharing} sharing)
    if(NOT TEST ${name})
      message(FATAL_ERROR "cmake/tests.cmake: a row for ${name}, but no tests/${name}_test.cc")
    endif()
    string(REPLACE "," ";" labels "${labels}")
    math(EXPR seconds "${timeout} * ${DELTATAP_TEST_TIMEOUT_FACTOR}")
    set_tests_properties(${name} PROPERTIES TIMEOUT ${seconds} LABELS "${labels}")
    if(sharing STREQUAL "serial")
      set_tests_properties(${name} PROPERTIES RUN_SERIAL TRUE)
    elseif(NOT sharing STREQUAL "-")
      string(REPLACE "," ";" locks "${sharing}")
      set_tests_properties(${name} PROPERTIES RESOURCE_LOCK "${locks}")
    endif()
    list(APPEND tabled ${name})
  endforeach()
  # A test file added without a row still runs, under defaults, and says so.
  foreach(name ${DELTATAP_TEST_NAMES})
    if(NOT name IN_LIST tabled)
      message(WARNING "tests/${name}_test.cc has no row in cmake/tests.cmake: 300 s, label 'process'")
      math(EXPR seconds "300 * ${DELTATAP_TEST_TIMEOUT_FACTOR}")
      set_tests_properties(${name} PROPERTIES TIMEOUT ${seconds} LABELS "process")
    endif()
  endforeach()
endfunction()

# Labels:
#   unit     in-process only (it may fork itself): no other program runs
#   process  runs the real deltatapd, deltatap, deltatap-sim, a fixture server
#            or a system tool
#   slow     a minute or more in the normal build: `ctest -LE slow` leaves them out
#   threads  exercises more than one thread of ours (the lanes, the arrival
#            queue, the journal worker, the snapshot scheduler, the stream
#            lane's parse path, the service): what `scripts/test --tsan` runs
#            under ThreadSanitizer
# Sharing:
#   serial   the test asserts a bound that CPU taken by a neighbour could
#            break (lanes: the tap keeps up under load; promises_durability:
#            the loss bound's margin; promises_service: the daemon must start
#            within the seconds before a midnight)
#   cpu      saturates a core or two for a long while; two of them at once
#            would starve each other and everything else
#   machine  reads or changes the machine itself: packaging installs the .debs
#            (units, /etc/deltatap, the deltatap user, man pages, completions),
#            which systemd_unit, manpages and completion must not see half-done
deltatap_test_table(
  # test                 timeout  labels                       sharing
  analytics              120      unit                         -
  analytics_http         300      process                      -
  archive                120      unit,threads                 -
  archive_daemon         240      process,threads              -
  base                   60       unit                         -
  cli                    240      process                      -
  completion             180      process                      machine
  compression            300      process,threads              -
  compression_kill       300      process                      cpu
  config                 60       unit                         -
  console                300      process                      -
  daemon                 240      process,threads              -
  daemon_notify          120      process,threads              -
  durability             600      process,slow                 cpu
  fidelity               300      process,threads              cpu
  hardening_child        300      process                      -
  hardening_cli          240      process                      -
  hardening_http         300      process                      -
  hardening_journal      240      process                      -
  hardening_start        180      process                      -
  hostile                600      process,slow                 cpu
  http_api               180      process,threads              -
  journal                60       unit,threads                 -
  lanes                  600      process,slow,threads         serial
  ledger                 60       unit                         -
  logging                60       unit                         -
  manpages               180      process                      machine
  metrics                120      process,threads              -
  monitoring             240      process                      -
  notify                 120      unit,threads                 -
  packaging              900      process,slow                 machine,cpu
  parser                 120      unit                         -
  postgres               600      process,slow,threads         cpu
  parser_corpus          60       unit                         -
  promises_durability    600      process,slow                 serial
  promises_service       600      process,slow                 serial
  reconcile_fetch        120      unit,threads                 -
  retention              60       unit                         -
  simulator              300      process                      -
  snapshot               300      unit                         -
  store                  180      unit,threads                 -
  stream                 300      process,threads              cpu
  systemd_unit           300      process                      machine,cpu
  timestamp              60       unit                         -
  websocket_client       300      process,threads              -
)
