#include <dbactor/detail/migration_sections.hpp>

#include <dbactor/detail/pragmas.hpp>

#include <dbactor/error.hpp>

#include <fmt/format.h>

#include <cctype>

namespace dbactor::detail {
namespace {

[[noreturn]] void invalid(std::string message)
{
    throw error(errc::migration_source_invalid, std::move(message));
}

std::string_view trim(std::string_view s)
{
    const auto b = s.find_first_not_of(" \t\r\n");
    if (b == std::string_view::npos)
        return {};
    const auto e = s.find_last_not_of(" \t\r\n");
    return s.substr(b, e - b + 1);
}

enum class marker
{
    none,
    up,
    down,
    other, ///< StatementBegin/End: a comment to us (SQLite's parser knows where a trigger ends)
};

struct marker_line
{
    marker kind = marker::none;
    bool goose = false;
    bool no_transaction = false;
};

/// What one line says as a section marker: `-- +goose …` or `-- migrate:…`.
marker_line read_marker(std::string_view line, std::string_view source, int line_no)
{
    marker_line m;
    line = trim(line);
    if (!line.starts_with("--"))
        return m;
    const std::string_view body = trim(line.substr(2));
    if (body.starts_with("+goose")) {
        m.goose = true;
        const std::string word = lower(std::string(trim(body.substr(6))));
        if (word == "up")
            m.kind = marker::up;
        else if (word == "down")
            m.kind = marker::down;
        else if (word == "statementbegin" || word == "statementend")
            m.kind = marker::other;
        else if (word == "no transaction") {
            m.kind = marker::other;
            m.no_transaction = true;
        }
        else
            invalid(
                fmt::format("{}:{}: unknown goose annotation '-- +goose {}'. dbactor reads '-- +goose Up', "
                            "'-- +goose Down', '-- +goose StatementBegin', '-- +goose StatementEnd' and "
                            "'-- +goose NO TRANSACTION'; remove it or rewrite the migration without it.",
                            source,
                            line_no,
                            trim(body.substr(6))));
        return m;
    }
    if (body.starts_with("migrate:up") || body.starts_with("migrate:down")) {
        const bool up = body.starts_with("migrate:up");
        m.kind = up ? marker::up : marker::down;
        const std::string rest = lower(std::string(body.substr(up ? 10 : 12)));
        m.no_transaction = rest.find("transaction:false") != std::string::npos;
    }
    return m;
}

} // namespace

std::string_view without_bom(std::string_view text) noexcept
{
    if (text.starts_with("\xEF\xBB\xBF"))
        text.remove_prefix(3);
    return text;
}

migration_text read_sections(std::string_view text, std::string_view source)
{
    migration_text out;
    std::size_t pos = 0, up_at = std::string_view::npos, down_at = std::string_view::npos;
    int line_no = 0, down_line = 0, goose = 0, dbmate = 0;
    while (pos < text.size()) {
        const auto nl = text.find('\n', pos);
        const std::size_t next = nl == std::string_view::npos ? text.size() : nl + 1;
        ++line_no;
        const auto m = read_marker(text.substr(pos, next - pos), source, line_no);
        if (m.kind != marker::none)
            ++(m.goose ? goose : dbmate);
        if (m.kind == marker::up) {
            if (up_at != std::string_view::npos || down_at != std::string_view::npos)
                invalid(fmt::format("{}:{}: a second Up section, or an Up section after the Down section. A "
                                    "migration file has one Up section and then at most one Down section.",
                                    source,
                                    line_no));
            up_at = pos;
            out.no_transaction = out.no_transaction || m.no_transaction;
        }
        else if (m.kind == marker::down) {
            if (down_at != std::string_view::npos)
                invalid(fmt::format(
                    "{}:{}: a second Down section. A migration file has at most one.", source, line_no));
            down_at = pos;
            down_line = line_no;
        }
        else if (m.no_transaction)
            out.no_transaction = true;
        pos = next;
    }
    if (goose && dbmate)
        invalid(
            fmt::format("{}: the file mixes goose ('-- +goose') and dbmate ('-- migrate:') markers; use one "
                        "tool's markers.",
                        source));
    out.sections = goose + dbmate > 0;
    if (down_at != std::string_view::npos && up_at == std::string_view::npos)
        invalid(fmt::format("{}:{}: a Down section without an Up section before it; put the statements that "
                            "apply the migration under '{}' first.",
                            source,
                            down_line,
                            goose ? "-- +goose Up" : "-- migrate:up"));
    if (out.sections && up_at == std::string_view::npos) {
        out.up = std::string(text); // only StatementBegin/End or NO TRANSACTION: the whole file applies it
        return out;
    }
    // The Up section starts at the top of the file (its marker and the comments before it are comments to
    // SQLite), so its line numbers are the file's.
    out.up = std::string(text.substr(0, down_at));
    if (down_at != std::string_view::npos)
        out.down =
            std::string(static_cast<std::size_t>(down_line - 1), '\n') + std::string(text.substr(down_at));
    return out;
}

} // namespace dbactor::detail
