# Installation layout and the Debian package.
#
# cmake --install puts, under the prefix: bin/ (deltatapd and friends, installed by
# CMakeLists.txt), lib/systemd/system/deltatap.service (ExecStart pointing at the
# prefix's deltatapd), lib/sysusers.d/deltatap.conf, share/doc/deltatap/. The
# configuration goes to /etc/deltatap/deltatap.conf whatever the prefix (the unit
# names that path), and only when no such file exists yet: an administrator's edits
# survive a reinstall. DESTDIR is honoured throughout.
#
# cpack -G DEB (in the build directory) builds deltatap_<version>_<arch>.deb with
# prefix /usr, its runtime dependencies computed by dpkg-shlibdeps when available,
# /etc/deltatap/deltatap.conf as a conffile, and maintainer scripts that create the
# user (systemd-sysusers) and reload systemd.

set(DELTATAP_UNIT_SOURCE ${CMAKE_SOURCE_DIR}/systemd/deltatap.service)
set(DELTATAP_UNIT_STAGING ${CMAKE_BINARY_DIR}/packaging)
set(DELTATAP_CONF_SOURCE ${CMAKE_SOURCE_DIR}/conf/deltatap.conf)

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
")

install(FILES ${CMAKE_SOURCE_DIR}/systemd/deltatap.sysusers
        DESTINATION lib/sysusers.d RENAME deltatap.conf
        PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)

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
")

install(FILES ${CMAKE_SOURCE_DIR}/README.md ${CMAKE_SOURCE_DIR}/docs/service.md
        DESTINATION share/doc/deltatap)
if(EXISTS ${DELTATAP_CONF_SOURCE})
  # The shipped example stays readable beside the docs after local edits.
  install(FILES ${DELTATAP_CONF_SOURCE} DESTINATION share/doc/deltatap/examples)
endif()

# --- CPack: the .deb ---------------------------------------------------------

set(CPACK_GENERATOR "DEB")
set(CPACK_PACKAGE_NAME "deltatap")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "taps the Jules Control Room broadcast into a queryable session-delta history")
set(CPACK_PACKAGE_DESCRIPTION
    "deltatapd connects to the Control Room backend's WebSocket broadcast, keeps every
session delta in an in-memory SQLite database snapshotted to /var/lib/deltatap, and
answers queries over a loopback HTTP API and the deltatap command-line tool.
It runs as a sandboxed systemd service and logs to the journal.")
set(CPACK_PACKAGE_CONTACT "deltatap maintainers <root@localhost>")
# Absolute destinations (/etc/deltatap) must land in the package, not on this
# machine: install through DESTDIR, with /usr as the prefix whatever the build's.
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX "/usr")
set(CPACK_PACKAGING_INSTALL_PREFIX "/usr")
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION "net")
set(CPACK_DEBIAN_PACKAGE_PRIORITY "optional")
find_program(DELTATAP_DPKG_SHLIBDEPS dpkg-shlibdeps)
if(DELTATAP_DPKG_SHLIBDEPS)
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
else()
  # What the binaries link against on Debian 12, for machines without dpkg-dev.
  set(CPACK_DEBIAN_PACKAGE_DEPENDS
      "libboost-log1.81.0, libboost-thread1.81.0, libboost-url1.81.0, libsqlite3-0, libssl3, zlib1g, libsystemd0, libc6, libstdc++6, libgcc-s1")
endif()
# systemd-sysusers creates the user; without it postinst falls back to adduser.
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "systemd")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "sqlite3")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CMAKE_SOURCE_DIR}/packaging/postinst
    ${CMAKE_SOURCE_DIR}/packaging/prerm
    ${CMAKE_SOURCE_DIR}/packaging/postrm
    ${CMAKE_SOURCE_DIR}/packaging/conffiles)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

include(CPack)
