#include <dbactor/detail/sql_text.hpp>

#include <algorithm>
#include <cctype>

namespace dbactor::detail {

std::pair<int, int> line_col(std::string_view text, std::size_t offset)
{
    offset = std::min(offset, text.size());
    int line = 1;
    std::size_t line_start = 0;
    for (std::size_t i = 0; i < offset; ++i)
        if (text[i] == '\n') {
            ++line;
            line_start = i + 1;
        }
    return {line, static_cast<int>(offset - line_start) + 1};
}

std::optional<std::pair<int, int>> first_nul(std::string_view text)
{
    const auto at = text.find('\0');
    if (at == std::string_view::npos)
        return std::nullopt;
    return line_col(text, at);
}

std::size_t skip_blank(std::string_view text, std::size_t pos)
{
    while (pos < text.size()) {
        const char ch = text[pos];
        if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n' || ch == '\f')
            ++pos;
        else if (text.substr(pos, 2) == "--") {
            const auto nl = text.find('\n', pos);
            pos = nl == std::string_view::npos ? text.size() : nl + 1;
        }
        else if (text.substr(pos, 2) == "/*") {
            const auto end = text.find("*/", pos + 2);
            pos = end == std::string_view::npos ? text.size() : end + 2;
        }
        else
            break;
    }
    return pos;
}

std::string upper_words(std::string_view sql, int words)
{
    std::string out;
    std::size_t i = skip_blank(sql, 0);
    for (int w = 0; w < words && i < sql.size(); ++w) {
        if (w)
            out.push_back(' ');
        while (i < sql.size() &&
               (std::isalnum(static_cast<unsigned char>(sql[i])) || sql[i] == '_' || sql[i] == '.'))
            out.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(sql[i++]))));
        i = skip_blank(sql, i);
        if (i < sql.size() && sql[i] == '=')
            break;
    }
    return out;
}

bool is_pragma_foreign_keys(std::string_view sql)
{
    const std::string w = upper_words(sql, 2);
    return w == "PRAGMA FOREIGN_KEYS" || w == "PRAGMA MAIN.FOREIGN_KEYS";
}

bool pragma_value_is_on(std::string_view sql)
{
    const auto at = sql.find_first_of("=(");
    if (at == std::string_view::npos)
        return false;
    std::size_t i = skip_blank(sql, at + 1);
    std::string value;
    while (i < sql.size() &&
           (std::isalnum(static_cast<unsigned char>(sql[i])) || sql[i] == '\'' || sql[i] == '"')) {
        if (sql[i] != '\'' && sql[i] != '"')
            value.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(sql[i]))));
        ++i;
    }
    return value == "ON" || value == "1" || value == "TRUE" || value == "YES";
}

std::optional<std::string> dropped_table(std::string_view sql)
{
    const std::string w = upper_words(sql, 4);
    if (!w.starts_with("DROP TABLE "))
        return std::nullopt;
    // Skip the keywords (DROP, TABLE and IF EXISTS), then read the name, quoted or not.
    std::size_t i = skip_blank(sql, 0);
    const int keywords = w.starts_with("DROP TABLE IF EXISTS") ? 4 : 2;
    for (int k = 0; k < keywords; ++k) {
        while (i < sql.size() && std::isalpha(static_cast<unsigned char>(sql[i])))
            ++i;
        i = skip_blank(sql, i);
    }
    std::string name;
    while (i < sql.size()) {
        const char open = sql[i];
        if (open == '"' || open == '`' || open == '[') {
            const char close = open == '[' ? ']' : open;
            const auto end = sql.find(close, i + 1);
            if (end == std::string_view::npos)
                return std::nullopt;
            name.append(sql.substr(i + 1, end - i - 1));
            i = end + 1;
        }
        else {
            while (i < sql.size() && (std::isalnum(static_cast<unsigned char>(sql[i])) || sql[i] == '_' ||
                                      static_cast<unsigned char>(sql[i]) >= 0x80))
                name.push_back(sql[i++]);
        }
        if (i < sql.size() && sql[i] == '.') { // schema.name: keep the name
            name.clear();
            ++i;
            continue;
        }
        break;
    }
    if (name.empty())
        return std::nullopt;
    return name;
}

bool is_transaction_control(std::string_view sql)
{
    const std::string w = upper_words(sql, 2);
    const std::string first = w.substr(0, w.find(' '));
    if (first == "BEGIN" || first == "COMMIT" || first == "END")
        return true;
    return first == "ROLLBACK" && w != "ROLLBACK TO";
}

} // namespace dbactor::detail
