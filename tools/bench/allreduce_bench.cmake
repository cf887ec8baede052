# All-reduce over our overlay (one member per process), and gloo's ring all-reduce when
# libgloo-dev is installed (tools/setup.sh), for tools/bench/run_allreduce.sh.
if(TARGET noloco_allreduce)
  add_executable(allreduce_bench ${CMAKE_CURRENT_LIST_DIR}/allreduce_bench.cc)
  target_include_directories(allreduce_bench PRIVATE ${PROJECT_SOURCE_DIR})
  target_link_libraries(allreduce_bench PRIVATE noloco_allreduce noloco_p2p noloco_common asio_standalone Threads::Threads)
endif()
find_package(Gloo CONFIG QUIET PATHS /usr/share/cmake/Gloo)
if(Gloo_FOUND AND TARGET gloo)
  add_executable(gloo_allreduce ${CMAKE_CURRENT_LIST_DIR}/gloo_allreduce.cc)
  target_link_libraries(gloo_allreduce PRIVATE gloo Threads::Threads)
else()
  message(STATUS "gloo not found: tools/bench/gloo_allreduce is not built (apt-get install libgloo-dev)")
endif()
