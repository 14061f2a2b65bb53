using System.Globalization;
using Microsoft.Data.Sqlite;

namespace Heddle.Controller.Store;

/// <summary>Parameterised commands on a SQLite connection: the few shapes the stores use.</summary>
internal static class SqliteCommands
{
    public static int Execute(this SqliteConnection db, string sql, params (string Name, object? Value)[] parameters)
    {
        using var command = db.Command(sql, parameters);
        return command.ExecuteNonQuery();
    }

    public static T? Scalar<T>(this SqliteConnection db, string sql, params (string Name, object? Value)[] parameters)
    {
        using var command = db.Command(sql, parameters);
        var value = command.ExecuteScalar();
        if (value is null or DBNull)
        {
            return default;
        }

        var target = Nullable.GetUnderlyingType(typeof(T)) ?? typeof(T);
        return (T)Convert.ChangeType(value, target, CultureInfo.InvariantCulture);
    }

    public static List<T> Query<T>(this SqliteConnection db, string sql, Func<SqliteDataReader, T> read, params (string Name, object? Value)[] parameters)
    {
        using var command = db.Command(sql, parameters);
        return command.ReadAll(read);
    }

    /// <summary>Runs a command (made here or kept prepared by its caller) and reads every row.</summary>
    public static List<T> ReadAll<T>(this SqliteCommand command, Func<SqliteDataReader, T> read)
    {
        using var reader = command.ExecuteReader();
        var result = new List<T>();
        while (reader.Read())
        {
            result.Add(read(reader));
        }

        return result;
    }

    private static SqliteCommand Command(this SqliteConnection db, string sql, (string Name, object? Value)[] parameters)
    {
        var command = db.CreateCommand();
        command.CommandText = sql;
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value ?? DBNull.Value);
        }

        return command;
    }
}
