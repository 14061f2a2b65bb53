using System.CommandLine;
using Heddle.Controller.Trust;

namespace Heddle.Cli.Commands;

/// <summary>
/// `heddle ca create|issue-etcd-member|issue-etcd-client`: the cluster CA and the etcd certificates it issues, for
/// controllers and etcd members set up by hand on several machines (`heddle up` makes its own). The CA folder is any
/// folder holding ca.crt and ca.key, a controller's state folder among them.
/// </summary>
internal static class CaCommands
{
    public static Command Create(CliConsole console)
    {
        var ca = new Command("ca", "The cluster CA and the etcd certificates it issues (for controllers on several machines)");

        var createDir = DirOption("The folder to make the CA in (ca.crt, ca.key mode 0600); it becomes the first controller's --state, or is copied there");
        var create = new Command("create", "Make the cluster CA in a folder, unless one is there") { createDir };
        create.SetAction(parse =>
        {
            var dir = Path.GetFullPath(parse.GetValue(createDir)!);
            var existed = File.Exists(Path.Combine(dir, "ca.crt")) || File.Exists(Path.Combine(dir, "ca.key"));
            Directory.CreateDirectory(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            using var authority = Load(dir, create: true);
            console.Out.WriteLine(existed
                ? $"{dir} already holds a CA ({authority.Certificate.Subject}); nothing was changed"
                : $"made the cluster CA in {dir}: ca.crt and ca.key (mode 0600). Every controller needs both in its state folder; keep ca.key off everything else");
            return ExitCodes.Ok;
        });

        var memberDir = DirOption("The folder holding the CA (ca.crt and ca.key): one made by 'heddle ca create' or a controller's state folder");
        var memberName = NameOption("The member's name (its etcd --name), which names the files");
        var addresses = new Option<string>("--address")
        {
            Description = "The addresses clients and peers dial the member by, comma-separated (IP addresses or host names)", Required = true,
        };
        var memberOut = OutOption();
        var memberLifetime = Durations.Option("--lifetime", "How long the certificate is valid", EtcdCertificates.DefaultLifetime);
        var member = new Command("issue-etcd-member", "Issue an etcd member's certificate (server and peer): NAME.crt, NAME.key and ca.crt in --out")
        {
            memberDir, memberName, addresses, memberOut, memberLifetime,
        };
        member.SetAction(parse =>
        {
            using var authority = Load(Path.GetFullPath(parse.GetValue(memberDir)!), create: false);
            var list = parse.GetValue(addresses)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            var files = Issue(() => EtcdCertificates.WriteMember(authority, parse.GetValue(memberName)!, list, Path.GetFullPath(parse.GetValue(memberOut)!), parse.GetValue(memberLifetime), TimeProvider.System));
            console.Out.WriteLine($"etcd member certificate {files.CertificateFile} (for {string.Join(", ", list)}), key {files.KeyFile} (mode 0600), CA {files.CaFile}");
            console.Out.WriteLine($"start etcd with https URLs and: {string.Join(' ', Heddle.Controller.Store.Kv.LocalEtcd.TlsArguments(files))}");
            return ExitCodes.Ok;
        });

        var clientDir = DirOption("The folder holding the CA (ca.crt and ca.key): one made by 'heddle ca create' or a controller's state folder");
        var clientName = NameOption("The controller's name, which names the files");
        var clientOut = OutOption();
        var clientLifetime = Durations.Option("--lifetime", "How long the certificate is valid", EtcdCertificates.DefaultLifetime);
        var client = new Command("issue-etcd-client", "Issue a controller's etcd client certificate: NAME.crt, NAME.key and ca.crt in --out")
        {
            clientDir, clientName, clientOut, clientLifetime,
        };
        client.SetAction(parse =>
        {
            using var authority = Load(Path.GetFullPath(parse.GetValue(clientDir)!), create: false);
            var files = Issue(() => EtcdCertificates.WriteClient(authority, parse.GetValue(clientName)!, Path.GetFullPath(parse.GetValue(clientOut)!), parse.GetValue(clientLifetime), TimeProvider.System));
            console.Out.WriteLine($"etcd client certificate {files.CertificateFile}, key {files.KeyFile} (mode 0600), CA {files.CaFile}");
            console.Out.WriteLine($"start the controller with: --etcd-ca {files.CaFile} --etcd-cert {files.CertificateFile} --etcd-key {files.KeyFile}");
            return ExitCodes.Ok;
        });

        ca.Subcommands.Add(create);
        ca.Subcommands.Add(member);
        ca.Subcommands.Add(client);
        return ca;
    }

    private static Option<string> DirOption(string description) => new("--dir") { Description = description, Required = true };

    private static Option<string> NameOption(string description) => new("--name") { Description = description, Required = true };

    private static Option<string> OutOption() => new("--out") { Description = "The folder to write the certificate, its key and ca.crt in (made if absent)", Required = true };

    private static CertificateAuthority Load(string dir, bool create)
    {
        if (!create && !(File.Exists(Path.Combine(dir, "ca.crt")) && File.Exists(Path.Combine(dir, "ca.key"))))
        {
            throw new UsageException($"{dir} holds no CA (ca.crt and ca.key): make one with 'heddle ca create --dir {dir}', or give a controller's state folder");
        }

        if (File.Exists(Path.Combine(dir, "ca.crt")) != File.Exists(Path.Combine(dir, "ca.key")))
        {
            throw new UsageException($"{dir} holds only one of ca.crt and ca.key");
        }

        return CertificateAuthority.LoadOrCreate(dir, TimeProvider.System);
    }

    private static Heddle.Controller.Store.Kv.EtcdTlsFiles Issue(Func<Heddle.Controller.Store.Kv.EtcdTlsFiles> issue)
    {
        try
        {
            return issue();
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            throw new UsageException(e.Message);
        }
    }
}
