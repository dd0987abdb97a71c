# Helpers shared by every module: one place for warnings, instrumentation and install rules.

add_library(scoresde_build_flags INTERFACE)
target_compile_options(scoresde_build_flags INTERFACE
  $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor
                            -Woverloaded-virtual -Wcast-align>)
# GCC 12 reports false -Wrestrict positives on std::string concatenation at -O3 (GCC bug 105329).
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
  target_compile_options(scoresde_build_flags INTERFACE $<$<COMPILE_LANGUAGE:CXX>:-Wno-restrict>)
endif()
if(SCORESDE_WERROR)
  target_compile_options(scoresde_build_flags INTERFACE $<$<COMPILE_LANGUAGE:CXX>:-Werror>)
endif()
if(SCORESDE_ARCH)
  target_compile_options(scoresde_build_flags INTERFACE
    $<$<COMPILE_LANGUAGE:CXX>:-march=${SCORESDE_ARCH}>)
endif()
if(SCORESDE_SANITIZE)
  target_compile_options(scoresde_build_flags INTERFACE
    $<$<COMPILE_LANGUAGE:CXX>:-fsanitize=address,undefined -fno-sanitize-recover=undefined
                              -fno-omit-frame-pointer>)
  target_link_options(scoresde_build_flags INTERFACE -fsanitize=address,undefined)
endif()
if(SCORESDE_COVERAGE)
  target_compile_options(scoresde_build_flags INTERFACE
    $<$<COMPILE_LANGUAGE:CXX>:--coverage -O0 -fno-inline>)
  target_link_options(scoresde_build_flags INTERFACE --coverage)
endif()

# scoresde_add_library(<module> SOURCES ... [PUBLIC_DEPS ...] [PRIVATE_DEPS ...])
# Creates target scoresde_<module> exported as scoresde::<module>, with public headers in
# <module>/include/scoresde/<module>/.
function(scoresde_add_library module)
  cmake_parse_arguments(ARG "" "" "SOURCES;PUBLIC_DEPS;PRIVATE_DEPS" ${ARGN})
  set(target scoresde_${module})
  add_library(${target} ${ARG_SOURCES})
  add_library(scoresde::${module} ALIAS ${target})
  set_target_properties(${target} PROPERTIES EXPORT_NAME ${module} OUTPUT_NAME scoresde_${module}
                                             VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR})
  target_include_directories(${target} PUBLIC
    $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>
    PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src)
  target_compile_features(${target} PUBLIC cxx_std_20)
  target_link_libraries(${target} PUBLIC ${ARG_PUBLIC_DEPS}
                                  PRIVATE ${ARG_PRIVATE_DEPS} $<BUILD_INTERFACE:scoresde_build_flags>)
  install(TARGETS ${target} EXPORT scoresdeTargets
          LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
          ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
          RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  install(DIRECTORY include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
endfunction()

# scoresde_add_test(<name> SOURCES ... [LIBS ...] [LABELS ...] [TIMEOUT seconds])
# One GoogleTest executable; each TEST becomes a ctest entry carrying the labels.
function(scoresde_add_test name)
  cmake_parse_arguments(ARG "" "TIMEOUT" "SOURCES;LIBS;LABELS" ${ARGN})
  if(NOT ARG_LABELS)
    set(ARG_LABELS unit)
  endif()
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 600)
  endif()
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_LIBS} GTest::gmock GTest::gtest_main scoresde_build_flags)
  target_include_directories(${name} PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src)
  gtest_discover_tests(${name}
    DISCOVERY_MODE PRE_TEST
    PROPERTIES LABELS "${ARG_LABELS}" TIMEOUT ${ARG_TIMEOUT}
    WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
endfunction()

# scoresde_add_benchmark(<name> SOURCES ... [LIBS ...])
function(scoresde_add_benchmark name)
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_LIBS} benchmark::benchmark scoresde_build_flags)
endfunction()

# scoresde_add_module(<module> [PUBLIC_DEPS ...] [PRIVATE_DEPS ...] [TEST_LIBS ...])
# The library from <module>/src/*.cpp (and src/*.cu when CUDA is on), one unit-test executable per
# <module>/tests/*_test.cpp (label unit) and one per <module>/suites/*_suite.cpp (label
# verification). Sources are found by glob so that adding a file is all it takes.
function(scoresde_add_module module)
  cmake_parse_arguments(ARG "" "" "PUBLIC_DEPS;PRIVATE_DEPS;TEST_LIBS" ${ARGN})
  file(GLOB sources CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/src/*.cpp)
  if(SCORESDE_HAVE_CUDA)
    file(GLOB cuda_sources CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/src/cuda/*.cu
                                             ${CMAKE_CURRENT_SOURCE_DIR}/src/cuda/*.cpp)
    list(APPEND sources ${cuda_sources})
  endif()
  scoresde_add_library(${module} SOURCES ${sources}
                       PUBLIC_DEPS ${ARG_PUBLIC_DEPS} PRIVATE_DEPS ${ARG_PRIVATE_DEPS})
  if(NOT SCORESDE_BUILD_TESTS)
    return()
  endif()
  file(GLOB tests CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/tests/*_test.cpp)
  foreach(test_source IN LISTS tests)
    get_filename_component(name ${test_source} NAME_WE)
    scoresde_add_test(${module}_${name} SOURCES ${test_source}
                      LIBS scoresde::${module} ${ARG_TEST_LIBS} LABELS unit)
  endforeach()
  file(GLOB suites CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/suites/*_suite.cpp)
  foreach(suite_source IN LISTS suites)
    get_filename_component(name ${suite_source} NAME_WE)
    scoresde_add_test(${module}_${name} SOURCES ${suite_source}
                      LIBS scoresde::${module} ${ARG_TEST_LIBS} LABELS verification TIMEOUT 1500)
  endforeach()
endfunction()
