# The CMake package of iouring's header-only C++ core as a wheel installs it: this file lies in
# <site-packages>/iouring/share/cmake/iouring/ and the headers in <site-packages>/iouring/include.
# After `pip install iouring`:
#   cmake -S . -B build -Diouring_DIR="$(python -c 'import iouring; print(iouring.get_cmake_dir())')"
# (or put iouring.get_cmake_dir()'s package directory on CMAKE_PREFIX_PATH; scikit-build-core
# builds find it through the cmake.prefix entry point), then find_package(iouring) gives
# iouring::iouring.
get_filename_component(_iouring_include "${CMAKE_CURRENT_LIST_DIR}/../../../include" ABSOLUTE)
if(NOT EXISTS "${_iouring_include}/iouring/io_uring.hpp")
  set(iouring_FOUND FALSE)
  set(iouring_NOT_FOUND_MESSAGE "iouring's headers are missing from ${_iouring_include}")
  return()
endif()
if(NOT TARGET iouring::iouring)
  add_library(iouring::iouring INTERFACE IMPORTED)
  set_target_properties(iouring::iouring PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${_iouring_include}"
    INTERFACE_COMPILE_FEATURES cxx_std_20)
endif()
unset(_iouring_include)
