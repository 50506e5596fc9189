# Installation layout, the distribution's build flags and the Debian packages.
#
# cmake --install puts, under the prefix: bin/ (deltatapd and friends, installed by
# CMakeLists.txt), lib/systemd/system/deltatap.service (ExecStart pointing at the
# prefix's deltatapd), lib/sysusers.d/deltatap.conf, share/doc/deltatap/ (with the
# copyright and the changelog), share/man/ (when the manpages target exists),
# share/bash-completion/ and share/zsh/ (when packaging/completions/ has them),
# share/deltatap/ (the Prometheus rules and the Grafana dashboard, when present). The
# configuration goes to /etc/deltatap/deltatap.conf whatever the prefix (the unit
# names that path), and only when no such file exists yet: an administrator's edits
# survive a reinstall. DESTDIR is honoured throughout.
#
# Two install components, one Debian package each (cpack -G DEB in the build
# directory):
#   deltatap_<version>_<arch>.deb        the daemon, the CLI, the unit, the user,
#                                        the configuration (a conffile), the docs
#   deltatap-tools_<version>_<arch>.deb  deltatap-sim, the broadcast simulator
# with prefix /usr, runtime dependencies computed by dpkg-shlibdeps when available,
# and maintainer scripts (packaging/) written as dh_installsysusers and
# dh_installsystemd write them. `lintian` has nothing to say about either package
# (tests/packaging_test.cc checks it, and installs, removes and purges them).

set(DELTATAP_UNIT_SOURCE ${CMAKE_SOURCE_DIR}/systemd/deltatap.service)
set(DELTATAP_UNIT_STAGING ${CMAKE_BINARY_DIR}/packaging)
set(DELTATAP_CONF_SOURCE ${CMAKE_SOURCE_DIR}/conf/deltatap.conf)
set(DELTATAP_PACKAGING_DIR ${CMAKE_SOURCE_DIR}/packaging)
# Generated files the packages ship (compressed changelog and man pages).
set(DELTATAP_PACKAGING_OUT ${CMAKE_BINARY_DIR}/packaging-files)

# --- Components ---------------------------------------------------------------
#
# CMakeLists.txt installs every executable without a component, that is into the
# default one ("Unspecified"): that is the daemon's package. deltatap-sim also goes
# into "tools", and an install of the daemon's component alone (what cpack does
# for its package) takes it out again. A plain `cmake --install` installs both.
if(CMAKE_INSTALL_DEFAULT_COMPONENT_NAME)
  set(DELTATAP_DAEMON_COMPONENT ${CMAKE_INSTALL_DEFAULT_COMPONENT_NAME})
else()
  set(DELTATAP_DAEMON_COMPONENT Unspecified)
endif()
set(DELTATAP_TOOLS_COMPONENT tools)
set(DELTATAP_TOOLS_PROGRAMS)
foreach(program deltatap-sim)
  if(TARGET ${program})
    list(APPEND DELTATAP_TOOLS_PROGRAMS ${program})
  endif()
endforeach()
foreach(program ${DELTATAP_TOOLS_PROGRAMS})
  install(CODE "
    if(CMAKE_INSTALL_COMPONENT STREQUAL \"${DELTATAP_DAEMON_COMPONENT}\")
      file(REMOVE \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/bin/${program}\")
    endif()
  " COMPONENT ${DELTATAP_DAEMON_COMPONENT})
  install(TARGETS ${program} RUNTIME DESTINATION bin COMPONENT ${DELTATAP_TOOLS_COMPONENT})
endforeach()

# --- The distribution's build flags ------------------------------------------
#
# What Debian builds its packages with: `dpkg-buildflags` (with
# DEB_BUILD_MAINT_OPTIONS=hardening=+all unless the environment sets its own), read
# here at configure time: -fstack-protector-strong, -Wformat -Werror=format-security,
# -D_FORTIFY_SOURCE=2 (fortify), -Wl,-z,relro -Wl,-z,now (bindnow), and the
# reproducible-build path map. They go on the programs the packages ship and the
# libraries those link (the tests link the same libraries). AUTO uses them in an
# optimised build (fortify needs -O) without sanitizers or fuzzers; ON insists.
set(DELTATAP_DPKG_BUILDFLAGS AUTO CACHE STRING
    "Build the shipped programs with dpkg-buildflags' flags: AUTO, ON or OFF")
set_property(CACHE DELTATAP_DPKG_BUILDFLAGS PROPERTY STRINGS AUTO ON OFF)
find_program(DELTATAP_DPKG_BUILDFLAGS_PROGRAM dpkg-buildflags)
set(deltatap_use_buildflags OFF)
if(DELTATAP_DPKG_BUILDFLAGS STREQUAL "AUTO")
  if(DELTATAP_DPKG_BUILDFLAGS_PROGRAM
     AND CMAKE_BUILD_TYPE MATCHES "^(Release|RelWithDebInfo|MinSizeRel)$"
     AND NOT DELTATAP_SANITIZE AND NOT DELTATAP_FUZZ)
    set(deltatap_use_buildflags ON)
  endif()
elseif(DELTATAP_DPKG_BUILDFLAGS)
  if(NOT DELTATAP_DPKG_BUILDFLAGS_PROGRAM)
    message(FATAL_ERROR "DELTATAP_DPKG_BUILDFLAGS=ON needs dpkg-buildflags (package dpkg-dev)")
  endif()
  set(deltatap_use_buildflags ON)
endif()

set(DELTATAP_BUILDFLAGS_SUMMARY "none (DELTATAP_DPKG_BUILDFLAGS=${DELTATAP_DPKG_BUILDFLAGS})")
if(deltatap_use_buildflags)
  if(DEFINED ENV{DEB_BUILD_MAINT_OPTIONS})
    set(deltatap_maint_options "$ENV{DEB_BUILD_MAINT_OPTIONS}")
  else()
    set(deltatap_maint_options "hardening=+all")
  endif()
  foreach(kind CPPFLAGS CXXFLAGS LDFLAGS)
    # From the source tree: the path map (-ffile-prefix-map=<tree>=.) names it.
    execute_process(
      COMMAND ${CMAKE_COMMAND} -E env "DEB_BUILD_MAINT_OPTIONS=${deltatap_maint_options}"
              ${DELTATAP_DPKG_BUILDFLAGS_PROGRAM} --get ${kind}
      WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}
      OUTPUT_VARIABLE deltatap_flags OUTPUT_STRIP_TRAILING_WHITESPACE
      RESULT_VARIABLE deltatap_flags_result)
    if(NOT deltatap_flags_result EQUAL 0)
      message(FATAL_ERROR "dpkg-buildflags --get ${kind} failed: ${deltatap_flags_result}")
    endif()
    separate_arguments(DELTATAP_DPKG_${kind} UNIX_COMMAND "${deltatap_flags}")
  endforeach()

  set(deltatap_shipped_targets deltatap_base deltatap_sim deltatap_lib)
  # The sqlite3 extension (tools/sqlite_extension.cc) ships too, linked like a program.
  set(deltatap_shipped_programs deltatap_sqlite)
  foreach(main ${DELTATAP_MAINS})
    get_filename_component(name ${main} NAME_WE)
    list(APPEND deltatap_shipped_programs ${name})
  endforeach()
  foreach(target ${deltatap_shipped_targets} ${deltatap_shipped_programs})
    if(TARGET ${target})
      target_compile_options(${target} PRIVATE ${DELTATAP_DPKG_CPPFLAGS} ${DELTATAP_DPKG_CXXFLAGS})
    endif()
  endforeach()
  foreach(target ${deltatap_shipped_programs})
    target_link_options(${target} PRIVATE ${DELTATAP_DPKG_LDFLAGS})
  endforeach()
  list(JOIN DELTATAP_DPKG_CPPFLAGS " " deltatap_cpp)
  list(JOIN DELTATAP_DPKG_CXXFLAGS " " deltatap_cxx)
  list(JOIN DELTATAP_DPKG_LDFLAGS " " deltatap_ld)
  set(DELTATAP_BUILDFLAGS_SUMMARY
      "CPPFLAGS ${deltatap_cpp}; CXXFLAGS ${deltatap_cxx}; LDFLAGS ${deltatap_ld}")
endif()
message(STATUS "dpkg-buildflags for the shipped programs: ${DELTATAP_BUILDFLAGS_SUMMARY}")
# For tests/packaging_test.cc: ON or OFF, then what was used.
file(CONFIGURE OUTPUT ${DELTATAP_PACKAGING_OUT}/dpkg-buildflags
     CONTENT "${deltatap_use_buildflags}\n${DELTATAP_BUILDFLAGS_SUMMARY}\n")

# --- The unit, the user, the configuration -------------------------------------

# The unit in the tree names /usr/bin/deltatapd (the package's path); the copy
# installed names wherever this install puts it. The prefix is only known when
# installing (cpack installs with /usr whatever the build was configured with).
# A private staging directory per run: an install and a cpack may run at once.
install(CODE "
  file(READ \"${DELTATAP_UNIT_SOURCE}\" deltatap_unit)
  string(REPLACE \"ExecStart=/usr/bin/deltatapd \"
                 \"ExecStart=\${CMAKE_INSTALL_PREFIX}/bin/deltatapd \"
                 deltatap_unit \"\${deltatap_unit}\")
  string(RANDOM LENGTH 12 deltatap_run)
  set(deltatap_staged \"${DELTATAP_UNIT_STAGING}/\${deltatap_run}\")
  file(WRITE \"\${deltatap_staged}/deltatap.service\" \"\${deltatap_unit}\")
  file(INSTALL DESTINATION \"\${CMAKE_INSTALL_PREFIX}/lib/systemd/system\" TYPE FILE
       PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
       FILES \"\${deltatap_staged}/deltatap.service\")
  file(REMOVE_RECURSE \"\${deltatap_staged}\")
" COMPONENT ${DELTATAP_DAEMON_COMPONENT})

install(FILES ${CMAKE_SOURCE_DIR}/systemd/deltatap.sysusers
        DESTINATION lib/sysusers.d RENAME deltatap.conf
        PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
        COMPONENT ${DELTATAP_DAEMON_COMPONENT})

# Never overwrite an existing configuration (dpkg does the same for the package
# through the conffile mechanism).
install(CODE "
  if(EXISTS \"\$ENV{DESTDIR}/etc/deltatap/deltatap.conf\")
    message(STATUS \"Keeping the existing \$ENV{DESTDIR}/etc/deltatap/deltatap.conf\")
  elseif(NOT EXISTS \"${DELTATAP_CONF_SOURCE}\")
    message(WARNING \"${DELTATAP_CONF_SOURCE} is missing: no configuration installed\")
  else()
    file(INSTALL DESTINATION \"/etc/deltatap\" TYPE FILE
         PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
         FILES \"${DELTATAP_CONF_SOURCE}\")
  endif()
" COMPONENT ${DELTATAP_DAEMON_COMPONENT})

# --- Documentation: docs, copyright, changelog ---------------------------------

install(FILES ${CMAKE_SOURCE_DIR}/README.md ${CMAKE_SOURCE_DIR}/docs/service.md
        DESTINATION share/doc/deltatap COMPONENT ${DELTATAP_DAEMON_COMPONENT})
if(EXISTS ${DELTATAP_CONF_SOURCE})
  # The shipped example stays readable beside the docs after local edits.
  install(FILES ${DELTATAP_CONF_SOURCE} DESTINATION share/doc/deltatap/examples
          COMPONENT ${DELTATAP_DAEMON_COMPONENT})
endif()

# packaging/changelog is the Debian changelog of both packages; its newest entry
# names the version being built. The version has no Debian revision (the packages
# are built from this tree: "native"), so Policy 12.7 wants it as changelog.gz.
file(STRINGS ${DELTATAP_PACKAGING_DIR}/changelog deltatap_changelog_head LIMIT_COUNT 1)
if(NOT deltatap_changelog_head MATCHES "^deltatap \\(${PROJECT_VERSION}\\) ")
  message(WARNING "packaging/changelog's newest entry is not for ${PROJECT_VERSION}: "
                  "\"${deltatap_changelog_head}\" (add one for the new version)")
endif()

# gzip -n -9: no name or time stamp in the header (reproducible), maximum
# compression (what lintian checks for changelogs and man pages).
find_program(DELTATAP_GZIP gzip REQUIRED)
set(deltatap_compressed)
# deltatap_compress(<source> <name>): ${DELTATAP_PACKAGING_OUT}/<name>.gz from source.
function(deltatap_compress source name)
  set(plain ${DELTATAP_PACKAGING_OUT}/${name})
  add_custom_command(OUTPUT ${plain}.gz
    COMMAND ${CMAKE_COMMAND} -E copy ${source} ${plain}
    COMMAND ${DELTATAP_GZIP} -n -9 -f ${plain}
    DEPENDS ${source} ${ARGN}
    COMMENT "Compressing ${name}"
    VERBATIM)
  set(deltatap_compressed ${deltatap_compressed} ${plain}.gz PARENT_SCOPE)
endfunction()

deltatap_compress(${DELTATAP_PACKAGING_DIR}/changelog changelog)
add_custom_target(deltatap_packaging_files ALL DEPENDS ${deltatap_compressed})

set(deltatap_doc_dirs
    ${DELTATAP_DAEMON_COMPONENT} share/doc/deltatap
    ${DELTATAP_TOOLS_COMPONENT} share/doc/deltatap-tools)
while(deltatap_doc_dirs)
  list(POP_FRONT deltatap_doc_dirs component doc_dir)
  install(FILES ${DELTATAP_PACKAGING_DIR}/copyright DESTINATION ${doc_dir}
          COMPONENT ${component})
  install(FILES ${DELTATAP_PACKAGING_OUT}/changelog.gz DESTINATION ${doc_dir}
          COMPONENT ${component})
endwhile()

# --- Man pages -------------------------------------------------------------------
#
# The manpages target (its own CMake file) writes ${CMAKE_BINARY_DIR}/man/<page>.
# Looked at once the whole top-level CMakeLists.txt is read, so that it does not
# matter whether that file is included before or after this one; without the
# target, no man pages are installed.
function(deltatap_install_manpages)
  if(NOT TARGET manpages)
    message(STATUS "No manpages target: the packages have no man pages")
    return()
  endif()
  set(pages
      deltatapd.8 ${DELTATAP_DAEMON_COMPONENT}
      deltatap.1 ${DELTATAP_DAEMON_COMPONENT}
      deltatap.conf.5 ${DELTATAP_DAEMON_COMPONENT}
      deltatap-sim.1 ${DELTATAP_TOOLS_COMPONENT})
  set(deltatap_compressed)
  set(undeclared_commands)
  set(undeclared_outputs)
  while(pages)
    list(POP_FRONT pages page component)
    set(source ${CMAKE_BINARY_DIR}/man/${page})
    # A page the manpages target declares (as an output or a byproduct) is
    # compressed again when it changes; one it does not declare, on every build.
    get_source_file_property(generated ${source} GENERATED)
    if(generated)
      deltatap_compress(${source} ${page} manpages)
    else()
      set(plain ${DELTATAP_PACKAGING_OUT}/${page})
      list(APPEND undeclared_commands
           COMMAND ${CMAKE_COMMAND} -E copy ${source} ${plain}
           COMMAND ${DELTATAP_GZIP} -n -9 -f ${plain})
      list(APPEND undeclared_outputs ${plain}.gz)
    endif()
    string(REGEX REPLACE ".*\\.([0-9])$" "\\1" section ${page})
    install(FILES ${DELTATAP_PACKAGING_OUT}/${page}.gz DESTINATION share/man/man${section}
            COMPONENT ${component})
  endwhile()
  if(deltatap_compressed)
    add_custom_target(deltatap_manpages_compressed ALL DEPENDS ${deltatap_compressed})
  endif()
  if(undeclared_commands)
    add_custom_target(deltatap_manpages_recompressed ALL ${undeclared_commands}
                      BYPRODUCTS ${undeclared_outputs}
                      COMMENT "Compressing the man pages" VERBATIM)
    add_dependencies(deltatap_manpages_recompressed manpages)
  endif()
endfunction()
cmake_language(DEFER DIRECTORY ${CMAKE_SOURCE_DIR} CALL deltatap_install_manpages)

# --- Shell completions and monitoring files ----------------------------------------
#
# Installed when present in the tree (other parts of the project write them).
set(DELTATAP_BASH_COMPLETION ${DELTATAP_PACKAGING_DIR}/completions/deltatap.bash)
set(DELTATAP_ZSH_COMPLETION ${DELTATAP_PACKAGING_DIR}/completions/_deltatap)
if(EXISTS ${DELTATAP_BASH_COMPLETION})
  install(FILES ${DELTATAP_BASH_COMPLETION} DESTINATION share/bash-completion/completions
          RENAME deltatap COMPONENT ${DELTATAP_DAEMON_COMPONENT})
  # bash-completion loads a completion by the command's name: the file completes
  # all three programs, so the other two names are links to it. They sit in the
  # daemon's package with the file (deltatap-sim's is unused without the tools).
  install(CODE "
    foreach(name deltatapd deltatap-sim)
      set(link \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/share/bash-completion/completions/\${name}\")
      message(STATUS \"Installing: \${link} -> deltatap\")
      file(CREATE_LINK deltatap \"\${link}\" SYMBOLIC)
    endforeach()
  " COMPONENT ${DELTATAP_DAEMON_COMPONENT})
endif()
if(EXISTS ${DELTATAP_ZSH_COMPLETION})
  install(FILES ${DELTATAP_ZSH_COMPLETION} DESTINATION share/zsh/vendor-completions
          COMPONENT ${DELTATAP_DAEMON_COMPONENT})
endif()
foreach(file prometheus/deltatap.rules.yml grafana/deltatap-dashboard.json)
  if(EXISTS ${DELTATAP_PACKAGING_DIR}/${file})
    install(FILES ${DELTATAP_PACKAGING_DIR}/${file} DESTINATION share/deltatap
            COMPONENT ${DELTATAP_DAEMON_COMPONENT})
  endif()
endforeach()

# --- CPack: the .debs ------------------------------------------------------------

set(DELTATAP_PACKAGE_MAINTAINER "deltatap maintainers <deltatap@example.org>" CACHE STRING
    "Maintainer field of the Debian packages (name <address>)")

set(CPACK_GENERATOR "DEB")
set(CPACK_PACKAGE_NAME "deltatap")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "${DELTATAP_PACKAGE_MAINTAINER}")
# Absolute destinations (/etc/deltatap) must land in the package, not on this
# machine: install through DESTDIR, with /usr as the prefix whatever the build's.
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX "/usr")
set(CPACK_PACKAGING_INSTALL_PREFIX "/usr")
set(CPACK_STRIP_FILES ON)

set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL ${DELTATAP_DAEMON_COMPONENT} ${DELTATAP_TOOLS_COMPONENT})
string(TOUPPER ${DELTATAP_DAEMON_COMPONENT} deltatap_daemon)
string(TOUPPER ${DELTATAP_TOOLS_COMPONENT} deltatap_tools)

set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SOURCE "deltatap")
set(CPACK_DEBIAN_PACKAGE_SECTION "net")
set(CPACK_DEBIAN_PACKAGE_PRIORITY "optional")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
find_program(DELTATAP_DPKG_SHLIBDEPS dpkg-shlibdeps)
if(DELTATAP_DPKG_SHLIBDEPS)
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
  set(deltatap_library_depends "")
else()
  # What the binaries link against on Debian 12, for machines without dpkg-dev.
  set(deltatap_library_depends
      "libboost-log1.81.0, libboost-thread1.81.0, libboost-url1.81.0, libsqlite3-0, libssl3, zlib1g, libsystemd0, libxxhash0, libzstd1, libdate-tz3, tzdata, libpq5, libc6, libstdc++6, libgcc-s1")
endif()

# The daemon's package. postinst runs systemd-sysusers (from systemd, or the
# standalone systemd-sysusers): dh_installsysusers' dependency.
set(CPACK_DEBIAN_${deltatap_daemon}_PACKAGE_NAME "deltatap")
set(CPACK_DEBIAN_${deltatap_daemon}_DESCRIPTION
"session-delta tap for the Jules Control Room
deltatapd connects to the Control Room backend's WebSocket broadcast, keeps
every session delta in an in-memory SQLite database snapshotted to
/var/lib/deltatap, and answers queries over a loopback HTTP API and the
deltatap command-line tool. It runs as a sandboxed systemd service, logs to
the journal and exports Prometheus metrics.")
set(deltatap_daemon_depends "systemd | systemd-sysusers")
if(deltatap_library_depends)
  string(APPEND deltatap_daemon_depends ", ${deltatap_library_depends}")
endif()
set(CPACK_DEBIAN_${deltatap_daemon}_PACKAGE_DEPENDS "${deltatap_daemon_depends}")
set(CPACK_DEBIAN_${deltatap_daemon}_PACKAGE_SUGGESTS "sqlite3")
set(CPACK_DEBIAN_${deltatap_daemon}_PACKAGE_CONTROL_EXTRA
    ${DELTATAP_PACKAGING_DIR}/postinst
    ${DELTATAP_PACKAGING_DIR}/prerm
    ${DELTATAP_PACKAGING_DIR}/postrm
    ${DELTATAP_PACKAGING_DIR}/conffiles)

# The tools: deltatap-sim, for tests and demonstrations, not for a server.
set(CPACK_DEBIAN_${deltatap_tools}_PACKAGE_NAME "deltatap-tools")
set(CPACK_DEBIAN_${deltatap_tools}_DESCRIPTION
"simulated Control Room backend for trying out deltatap
deltatap-sim is a WebSocket server that broadcasts realistic, seeded session
deltas the way the Jules Control Room backend does, at a chosen rate and in
either frame format, for demonstrations, tests and benchmarks of deltatapd.
A server that taps a real backend does not need it.")
if(deltatap_library_depends)
  set(CPACK_DEBIAN_${deltatap_tools}_PACKAGE_DEPENDS "${deltatap_library_depends}")
endif()

include(CPack)
