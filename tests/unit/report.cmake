# `aperture report` on hostile and foreign inputs (issue #9): bounded time and memory, clear
# messages, its own JSON read back. No root needed.
ap_add_test(unit.report_cli python3 ${CMAKE_CURRENT_SOURCE_DIR}/report_cli_test.py
            $<TARGET_FILE:aperture-cli>)
