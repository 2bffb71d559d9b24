# The web UI built into aperture-aggregator: every file under web/ (recursively, but no
# dot-files and no node_modules) becomes an entry of the asset table in a generated C file
# that defines ap_web_asset_find() (src/server/web_assets.h); the content type comes from the
# extension. With no web/ directory the table is empty and GET / answers 404 "web UI not
# built". Included from src/CMakeLists.txt after the ap_server target.
set(AP_WEB_DIR ${CMAKE_SOURCE_DIR}/web)
set(AP_WEB_ASSETS_C ${CMAKE_BINARY_DIR}/web-gen/web_assets.c)
# CONFIGURE_DEPENDS: a file added to web/ re-runs the glob at build time.
file(GLOB_RECURSE AP_WEB_FILES CONFIGURE_DEPENDS ${AP_WEB_DIR}/*)
list(FILTER AP_WEB_FILES EXCLUDE REGEX "/node_modules/|/\\.")
add_custom_command(
  OUTPUT ${AP_WEB_ASSETS_C}
  COMMAND ${Python3_EXECUTABLE} ${CMAKE_SOURCE_DIR}/cmake/gen_web_assets.py ${AP_WEB_DIR}
          ${AP_WEB_ASSETS_C} ${AP_WEB_FILES}
  DEPENDS ${AP_WEB_FILES} ${CMAKE_SOURCE_DIR}/cmake/gen_web_assets.py
  COMMENT "embed the web UI (web/, ${CMAKE_CURRENT_LIST_FILE})")
target_sources(ap_server PRIVATE ${AP_WEB_ASSETS_C})
