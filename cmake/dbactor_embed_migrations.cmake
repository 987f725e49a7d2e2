# dbactor_embed_migrations(TARGET DIR [FUNCTION name])
#
# Compiles every `*.sql` file of DIR (migrations `NNNN_name.sql` and their `NNNN_name.down.sql`) into TARGET,
# so that the program carries its schema. It adds a generated source defining
#
#     dbactor::migration_set name();        // name defaults to embedded_migrations
#
# declared in the generated header `name.hpp`, which is put on TARGET's include path:
#
#     #include <embedded_migrations.hpp>
#     opts.migrations = embedded_migrations();
#
# Files are embedded byte for byte (checksums match those of the same files on disk); editing, adding or
# removing a file regenerates the source at the next build.
set(_DBACTOR_EMBED_GEN "${CMAKE_CURRENT_LIST_DIR}/dbactor_embed_migrations_gen.cmake" CACHE INTERNAL "")

function(dbactor_embed_migrations target dir)
    cmake_parse_arguments(ARG "" "FUNCTION" "" ${ARGN})
    if(NOT ARG_FUNCTION)
        set(ARG_FUNCTION embedded_migrations)
    endif()
    if(NOT ARG_FUNCTION MATCHES "^[A-Za-z_][A-Za-z0-9_]*$")
        message(FATAL_ERROR "dbactor_embed_migrations: FUNCTION '${ARG_FUNCTION}' is not a C++ identifier.")
    endif()
    get_filename_component(dir "${dir}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
    if(NOT IS_DIRECTORY "${dir}")
        message(FATAL_ERROR "dbactor_embed_migrations: '${dir}' is not a directory of migrations.")
    endif()
    file(GLOB sql_files CONFIGURE_DEPENDS "${dir}/*.sql")
    set(out_dir "${CMAKE_CURRENT_BINARY_DIR}/dbactor_embedded/${target}")
    add_custom_command(
        OUTPUT "${out_dir}/${ARG_FUNCTION}.cpp" "${out_dir}/${ARG_FUNCTION}.hpp"
        COMMAND ${CMAKE_COMMAND} "-DDIR=${dir}" "-DOUT_DIR=${out_dir}" "-DFUNCTION=${ARG_FUNCTION}"
                -P "${_DBACTOR_EMBED_GEN}"
        DEPENDS ${sql_files} "${_DBACTOR_EMBED_GEN}"
        COMMENT "Embedding the migrations of ${dir} into ${target}"
        VERBATIM)
    target_sources(${target} PRIVATE "${out_dir}/${ARG_FUNCTION}.cpp" "${out_dir}/${ARG_FUNCTION}.hpp")
    target_include_directories(${target} PRIVATE "${out_dir}")
endfunction()
