cmake_minimum_required(VERSION 3.25) # IN_LIST below
# Installs the build tree into a fresh prefix, then configures, builds and runs tests/install/consumer
# against it, as a user's own project would.
file(REMOVE_RECURSE ${WORK_DIR})
set(prefix ${WORK_DIR}/prefix)
execute_process(COMMAND ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix}
    RESULT_VARIABLE rc OUTPUT_QUIET)
if(rc)
    message(FATAL_ERROR "cmake --install failed (${rc})")
endif()
# Only the detail headers that public headers include are installed; the library's private rooms are not.
file(GLOB installed_detail RELATIVE ${prefix}/include/dbactor/detail ${prefix}/include/dbactor/detail/*)
foreach(private actor.hpp session.hpp request_queue.hpp write_batch.hpp boot.hpp)
    if(private IN_LIST installed_detail)
        message(FATAL_ERROR "the private header detail/${private} was installed: ${installed_detail}")
    endif()
endforeach()
if(NOT "request.hpp" IN_LIST installed_detail)
    message(FATAL_ERROR "detail/request.hpp (included by database.hpp) was not installed: ${installed_detail}")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} -S ${CONSUMER_SOURCE} -B ${WORK_DIR}/build -G ${GENERATOR}
        -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_CXX_COMPILER=${CXX} -DCMAKE_BUILD_TYPE=Release
    RESULT_VARIABLE rc)
if(rc)
    message(FATAL_ERROR "configuring the consumer against ${prefix} failed (${rc})")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build ${WORK_DIR}/build RESULT_VARIABLE rc)
if(rc)
    message(FATAL_ERROR "building the consumer failed (${rc})")
endif()
execute_process(COMMAND ${WORK_DIR}/build/consumer WORKING_DIRECTORY ${WORK_DIR} RESULT_VARIABLE rc)
if(rc)
    message(FATAL_ERROR "the consumer failed (${rc})")
endif()
