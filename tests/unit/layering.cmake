# The build-time module layering check (scripts/check_layering.py) refuses what it should.
ap_add_test(unit.layering python3 ${CMAKE_CURRENT_SOURCE_DIR}/layering_test.py)
