# ROPEKIT_SANITIZE="address;undefined" builds everything with those sanitizers, and any
# finding aborts (-fno-sanitize-recover=all), so a test run fails on it.
if(ROPEKIT_SANITIZE)
  string(REPLACE ";" "," _ropekit_san "${ROPEKIT_SANITIZE}")
  add_compile_options(-fsanitize=${_ropekit_san} -fno-sanitize-recover=all -fno-omit-frame-pointer -g)
  add_link_options(-fsanitize=${_ropekit_san} -fno-sanitize-recover=all)
endif()
