# Man pages: deltatapd(8), deltatap(1), deltatap-sim(1) and deltatap.conf(5),
# written into ${CMAKE_BINARY_DIR}/man/ by tools/manpage.cc from the same texts
# the programs print for --help and from the configuration key table
# (lib/service/config_keys.cc), so a page changes whenever they do. The
# generator links the library that holds those texts: a change to them relinks
# it and the pages are written again.
#
# The target `manpages` is part of ALL. The generator itself is a build tool,
# never installed; cmake/packaging.cmake installs the pages when this target
# exists. tests/manpages_test.cc checks the pages (and waits for them).

add_executable(deltatap_manpage ${CMAKE_SOURCE_DIR}/tools/manpage.cc)
target_link_libraries(deltatap_manpage PRIVATE deltatap_lib)
set_target_properties(deltatap_manpage PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tools)

set(DELTATAP_MAN_DIR ${CMAKE_BINARY_DIR}/man)
set(DELTATAP_MAN_PAGES
  ${DELTATAP_MAN_DIR}/deltatapd.8
  ${DELTATAP_MAN_DIR}/deltatap.1
  ${DELTATAP_MAN_DIR}/deltatap-sim.1
  ${DELTATAP_MAN_DIR}/deltatap.conf.5)
add_custom_command(
  OUTPUT ${DELTATAP_MAN_PAGES}
  COMMAND deltatap_manpage ${DELTATAP_MAN_DIR}
  DEPENDS deltatap_manpage
  COMMENT "Writing the man pages into ${DELTATAP_MAN_DIR}"
  VERBATIM)
add_custom_target(manpages ALL DEPENDS ${DELTATAP_MAN_PAGES})

if(TARGET test_manpages)
  add_dependencies(test_manpages manpages)
endif()
